/**
 * Every ```ts block in README.md and docs/ compiles against the public entry points (`qtsmtpd`,
 * `qtsmtpd/testing`), as a plugin author would paste it, and so do the example plugin packages
 * in examples/. A block whose first line is a comment
 * naming a `.ts` file (`// plugins/rcpt/vip.ts`) is written at that path, so a later block on
 * the same page can import it; tsc's errors point back to the page and line.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'

const repo = resolve(import.meta.dirname, '../..')
const run = promisify(execFile)

interface Snippet {
  /** Where the block is written, relative to the page's directory in the scratch tree. */
  readonly file: string
  readonly page: string
  /** The page's line number of the block's first line. */
  readonly line: number
  readonly code: string
}

/** The ```ts blocks of one Markdown page. */
function snippetsOf(page: string, markdown: string): Snippet[] {
  const snippets: Snippet[] = []
  const lines = markdown.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i] ?? '')) continue
    const start = i + 1
    let end = start
    while (end < lines.length && !/^```\s*$/.test(lines[end] ?? '')) end++
    const code = lines.slice(start, end).join('\n')
    const named = /^\/\/ ([\w./-]+\.ts)\b/.exec(code)?.[1]
    snippets.push({ file: named ?? `snippet-${start + 1}.ts`, page, line: start + 1, code: `${code}\n` })
    i = end
  }
  return snippets
}

/** The example plugin packages: their sources import `qtsmtpd` as a published plugin does. */
async function examplePackages(): Promise<string[]> {
  const entries = await readdir(join(repo, 'examples'), { withFileTypes: true })
  return entries.filter((e) => e.isDirectory()).map((e) => join(repo, 'examples', e.name, 'src'))
}

async function markdownPages(): Promise<string[]> {
  const pages = ['README.md']
  for (const entry of await readdir(join(repo, 'docs'), { recursive: true, withFileTypes: true }))
    if (entry.isFile() && entry.name.endsWith('.md')) pages.push(relative(repo, join(entry.parentPath, entry.name)))
  return pages.sort()
}

test('the TypeScript examples in the docs and examples/ compile against the public API', {
  timeout: 120_000,
}, async () => {
  const scratch = await mkdtemp(join(tmpdir(), 'qtsmtpd-docs-'))
  try {
    const origin = new Map<string, Snippet>()
    for (const page of await markdownPages()) {
      for (const s of snippetsOf(page, await readFile(join(repo, page), 'utf8'))) {
        const file = join(scratch, page.replace(/\.md$/, ''), s.file)
        assert.ok(!origin.has(file), `${page}:${s.line}: a second block named ${s.file}`)
        origin.set(file, s)
        await mkdir(dirname(file), { recursive: true })
        await writeFile(file, s.code)
      }
    }
    assert.ok(origin.size > 0, 'no ```ts block found in the docs')
    const tsconfig = {
      extends: join(repo, 'tsconfig.json'),
      compilerOptions: {
        paths: {
          qtsmtpd: [join(repo, 'src/index.ts')],
          'qtsmtpd/testing': [join(repo, 'src/testing/index.ts')],
        },
        typeRoots: [join(repo, 'node_modules/@types')],
        // Examples show the relevant part; an unused binding in one is not an error.
        noUnusedLocals: false,
        noUnusedParameters: false,
      },
      include: [scratch, ...(await examplePackages())],
    }
    await writeFile(join(scratch, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2))
    await writeFile(join(scratch, 'package.json'), JSON.stringify({ type: 'module' }))
    const tsc = join(repo, 'node_modules/.bin/tsc')
    const out = await run(tsc, ['-p', join(scratch, 'tsconfig.json'), '--pretty', 'false']).then(
      () => '',
      (e: { stdout: string; stderr: string }) => e.stdout + e.stderr,
    )
    // path(line,col): error ... → docs/page.md:line:col: error ...
    const located = out.replace(/^(\S+?\.ts)\((\d+),(\d+)\)/gm, (whole, file: string, line: string, col: string) => {
      const s = origin.get(resolve(scratch, file)) ?? origin.get(file)
      return s ? `${s.page}:${s.line + Number(line) - 1}:${col}` : whole
    })
    assert.equal(located, '', `examples that do not compile:\n${located}`)
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
})
