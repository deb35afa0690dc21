/**
 * The dependency rule (docs/architecture.md): which folder of src/ may import which. Every
 * import and export statement of every file under src/ is read, type-only ones too (a type
 * couples the layers as much as a value does: moving the type to the layer that owns it is the
 * fix). A violation prints as `file:line imports X (layer A may not import layer B)`.
 *
 * Test code (the patterns in `isTestCode`) may import anything, test/ included; nothing else may
 * import src/testing/ or test/. A folder missing from the table is a violation too: a new folder
 * gets its place here and in docs/architecture.md.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative, resolve } from 'node:path'
import { test } from 'node:test'

const repo = resolve(import.meta.dirname, '../..')

const foundation = ['protocol', 'net', 'clock', 'files']
const services = [...foundation, 'config', 'metrics', 'message', 'dns', 'store', 'clients']
const core = [...services, 'host', 'mailauth']

/**
 * What each layer may import besides itself, from the bottom up; every layer may import
 * src/version.ts, which imports nothing. `api` is src/index.ts, the package's entry point.
 */
const mayImport: Readonly<Record<string, readonly string[]>> = {
  version: [],
  protocol: ['net'],
  net: ['protocol'],
  clock: [],
  files: [],
  config: foundation,
  metrics: ['clock'],
  message: [...foundation, 'config', 'metrics'],
  dns: [...foundation, 'config', 'metrics'],
  store: [...foundation, 'config', 'metrics'],
  clients: [...foundation, 'config', 'metrics', 'message', 'dns'],
  host: services,
  mailauth: [...services, 'host'],
  session: core,
  plugins: core,
  admin: [...core, 'session'],
  server: [...core, 'session', 'plugins', 'admin'],
  cli: [...core, 'session', 'plugins', 'admin', 'server'],
  api: [...core, 'session', 'plugins', 'server'],
  testing: [...core, 'session', 'plugins', 'admin', 'server', 'cli', 'api'],
}

/**
 * Imports that break the table on purpose, each with its reason. An entry that no longer
 * matches an import is reported, so the list only shrinks.
 */
const exceptions: readonly { readonly from: string; readonly to: string; readonly reason: string }[] = []

/** Tests and their helpers under src/, by name: they may import anything. */
function isTestCode(file: string): boolean {
  return /(\.test|test-support|test-fixtures|\.fixture|contract-suite)\.ts$/.test(file)
}

/** The layer of a path relative to the repository: the folder under src/, `api`, or undefined outside src/. */
function layerOf(file: string): string | undefined {
  const parts = file.split('/')
  if (parts[0] !== 'src') return undefined
  if (parts.length === 2) return parts[1] === 'index.ts' ? 'api' : (parts[1] ?? '').replace(/\.ts$/, '')
  return parts[1]
}

interface Import {
  readonly file: string
  readonly line: number
  readonly specifier: string
  readonly target: string
}

// Static imports and re-exports (`import x from`, `import type {…} from`, `export * from`,
// `import './x.ts'`) at the start of a line, and dynamic `import('…')` anywhere.
const statement =
  /^(?:import|export)\b[^'"`;]*?(?:\bfrom\s*)?(['"])(\.\.?\/[^'"]+)\1|\bimport\(\s*(['"])(\.\.?\/[^'"]+)\3/gm

function importsOf(file: string, text: string): Import[] {
  const found: Import[] = []
  for (const m of text.matchAll(statement)) {
    const specifier = m[2] ?? m[4] ?? ''
    const line = text.slice(0, m.index).split('\n').length
    found.push({ file, line, specifier, target: normalize(join(dirname(file), specifier)) })
  }
  return found
}

function sourceFiles(): string[] {
  return readdirSync(join(repo, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join('src', f))
    .sort()
}

/** Every import that breaks the rule in these files (paths relative to the repository). */
function violations(files: readonly string[], read: (file: string) => string): string[] {
  const out: string[] = []
  const used = new Set<(typeof exceptions)[number]>()
  for (const file of files) {
    const from = layerOf(file) as string
    const allowed = mayImport[from]
    if (allowed === undefined) {
      out.push(`${file}:1 is in src/${from}/, which has no layer (add it to ${relative(repo, import.meta.filename)})`)
      continue
    }
    if (isTestCode(file)) continue
    for (const imp of importsOf(file, read(file))) {
      const to = layerOf(imp.target)
      if (to === from) continue
      const excused = exceptions.find((e) => e.from === file && e.to === imp.target)
      if (excused !== undefined) {
        used.add(excused)
        continue
      }
      if (to === undefined)
        out.push(`${file}:${imp.line} imports ${imp.specifier} (code under src/ may not import ${imp.target})`)
      else if (to !== 'version' && !allowed.includes(to))
        out.push(`${file}:${imp.line} imports ${imp.specifier} (layer ${from} may not import layer ${to})`)
    }
  }
  for (const e of exceptions) if (!used.has(e)) out.push(`exception ${e.from} -> ${e.to} matches no import: remove it`)
  return out
}

test('every import under src/ follows the dependency rule of docs/architecture.md', () => {
  const found = violations(sourceFiles(), (file) => readFileSync(join(repo, file), 'utf8'))
  assert.equal(found.length, 0, `${found.length} imports break the dependency rule:\n${found.join('\n')}`)
})

test('the checker reads every form of import', () => {
  const sample =
    "import a from './a.ts'\nimport type {\n  B,\n} from '../b/b.ts'\nexport * from './c.ts'\nimport './d.ts'\nconst e = await import('../e.ts')\n"
  const specifiers = [...sample.matchAll(statement)].map((m) => m[2] ?? m[4])
  assert.deepEqual(specifiers, ['./a.ts', '../b/b.ts', './c.ts', './d.ts', '../e.ts'])
})

test('an import from a higher layer is reported with its file and line, type-only ones too', () => {
  const files: Record<string, string> = {
    'src/plugins/rcpt/x.ts':
      "import { ok } from '../../host/verdict.ts'\nimport type { Session } from '../../session/session.ts'\n",
    'src/server/serve.ts': "import type { CliOptions } from '../cli/args.ts'\n",
    'src/host/runner.ts': "import { startTestServer } from '../testing/index.ts'\n",
    'src/net/ip.ts': "import { peer } from '../../test/peers/free-port.ts'\n",
    'src/plugins/rcpt/x.test.ts': "import { startTestServer } from '../../testing/index.ts'\n",
    'src/gadgets/thing.ts': '',
  }
  assert.deepEqual(
    violations(Object.keys(files), (f) => files[f] ?? ''),
    [
      'src/plugins/rcpt/x.ts:2 imports ../../session/session.ts (layer plugins may not import layer session)',
      'src/server/serve.ts:1 imports ../cli/args.ts (layer server may not import layer cli)',
      'src/host/runner.ts:1 imports ../testing/index.ts (layer host may not import layer testing)',
      'src/net/ip.ts:1 imports ../../test/peers/free-port.ts (code under src/ may not import test/peers/free-port.ts)',
      'src/gadgets/thing.ts:1 is in src/gadgets/, which has no layer (add it to test/architecture/dependency-rules.test.ts)',
    ],
  )
})
