/**
 * bin/qtsmtpd on a machine whose `node` is older than 24 (Debian 12 has 18, Debian 13 has 20):
 * it runs with Node.js 24 from the npm package `node` installed with qtsmtpd, else says which
 * Node it needs and how to get it (exit 5), never a stack trace about ".ts" files.
 */
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'

const repo = resolve(import.meta.dirname, '../..')
const bin = join(repo, 'bin/qtsmtpd')
const run = promisify(execFile)

/** The system's Node when it is older than 24, as on the machines this guards. */
function systemOldNode(): string | undefined {
  try {
    const v = execFileSync('/usr/bin/node', ['--version'], { encoding: 'utf8' })
    return Number.parseInt(v.slice(1), 10) < 24 ? '/usr/bin/node' : undefined
  } catch {
    return undefined
  }
}

interface Outcome {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

async function outcome(file: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(file, args, { env, cwd: tmpdir() })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const { code, stdout, stderr } = e as { code: number; stdout: string; stderr: string }
    return { code, stdout, stderr }
  }
}

describe('bin/qtsmtpd under an old Node', { timeout: 60_000 }, () => {
  let dir: string
  let oldNodePath: string
  let noNodePath: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-launcher-'))
    // A `node` that is Node 20 to the launcher's version check (and fails anything else).
    oldNodePath = join(dir, 'old-node')
    noNodePath = join(dir, 'no-node')
    await mkdir(oldNodePath)
    await mkdir(noNodePath)
    await writeFile(
      join(oldNodePath, 'node'),
      '#!/bin/sh\n[ "$1" = --version ] && { echo v20.20.2; exit 0; }\necho "old node cannot run $*" >&2\nexit 1\n',
    )
    await chmod(join(oldNodePath, 'node'), 0o755)
    for (const tool of ['readlink', 'sh']) await symlink(`/usr/bin/${tool}`, join(noNodePath, tool))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  test('from a checkout it runs with Node 24 from node_modules: --help and --check', async () => {
    const env = { PATH: `${oldNodePath}:/usr/bin:/bin` }
    const help = await outcome(bin, ['--help'], env)
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /^Usage: qtsmtpd /m)

    const config = join(dir, 'config')
    await mkdir(config)
    await writeFile(join(config, 'plugins'), 'rcpt_ok\n')
    await writeFile(join(config, 'me'), 'mx.test\n')
    const check = await outcome(bin, ['--config', config, '--check'], env)
    assert.equal(check.code, 0, check.stderr)
    assert.match(check.stdout, /^configuration OK$/m)
  })

  test('through a symbolic link (node_modules/.bin, /usr/local/bin) it finds its own package', async () => {
    const link = join(dir, 'qtsmtpd')
    await symlink(bin, link)
    const r = await outcome(link, ['--version'], { PATH: `${oldNodePath}:/usr/bin:/bin` })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^qtsmtpd \d+\.\d+\.\d+\n$/)
  })

  test('run as `node bin/qtsmtpd` by Node 20, it starts itself again with Node 24', {
    skip: systemOldNode() === undefined && 'no Node older than 24 at /usr/bin/node',
  }, async () => {
    const r = await outcome(systemOldNode() ?? '', [bin, '--help'], { PATH: '/usr/bin:/bin' })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^Usage: qtsmtpd /m)
  })

  describe('without Node 24 anywhere', () => {
    let lonely: string
    before(async () => {
      // A copy of the launcher in a package that has no node_modules.
      lonely = join(dir, 'pkg/bin/qtsmtpd')
      await mkdir(join(dir, 'pkg/bin'), { recursive: true })
      await copyFile(bin, lonely)
      await chmod(lonely, 0o755)
    })

    test('with an old node on PATH it names that node and how to get Node 24, exit 5', async () => {
      const r = await outcome(lonely, ['--help'], { PATH: `${oldNodePath}:/usr/bin:/bin` })
      assert.equal(r.code, 5)
      assert.equal(r.stdout, '')
      assert.match(
        r.stderr,
        /^qtsmtpd: needs Node\.js 24 or later; node on PATH \(.*\/old-node\/node\) is v20\.20\.2\.$/m,
      )
      assert.match(r.stderr, new RegExp(`run npm install in ${join(dir, 'pkg')}: it installs Node\\.js 24`))
      assert.match(r.stderr, /install Node\.js 24 \(https:\/\/nodejs\.org\/en\/download\) and put it first on PATH/)
    })

    test('with no node at all it says so, exit 5', async () => {
      const r = await outcome(lonely, ['--help'], { PATH: noNodePath })
      assert.equal(r.code, 5)
      assert.match(r.stderr, /^qtsmtpd: needs Node\.js 24 or later, and there is no node on PATH\.$/m)
    })

    test('run as `node bin/qtsmtpd` by Node 20, it gives the same advice', {
      skip: systemOldNode() === undefined && 'no Node older than 24 at /usr/bin/node',
    }, async () => {
      const r = await outcome(systemOldNode() ?? '', [lonely, '--help'], { PATH: '/usr/bin:/bin' })
      assert.equal(r.code, 5)
      assert.match(r.stderr, /^qtsmtpd: needs Node\.js 24 or later; node on PATH \(\/usr\/bin\/node\) is v\d+\./m)
    })
  })
})
