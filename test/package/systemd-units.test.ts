/**
 * contrib/systemd as docs/running.md installs it. CI's container runs no systemd (no PID 1 to
 * start units under), so the units are checked the ways that work without one:
 * - `systemd-analyze verify` prints nothing (an unknown key, a bad value, a missing program);
 *   the program path is pointed at this checkout's bin/qtsmtpd for it;
 * - every path a service may write is a directory systemd creates for it (a ReadWritePaths=
 *   directory that no step creates fails the namespace set-up: the service never starts);
 * - the program the units run is created by a step of docs/running.md;
 * - `systemd-analyze security --offline=yes` keeps the exposure at 2.0 or less;
 * - every system call qtsmtpd makes under `strace -f` (the launcher, two workers, a delivery,
 *   a reload, a drain) is allowed by the units' SystemCallFilter= (a denied one kills it). It
 *   runs as nobody, as the units' User= runs it: a root process makes calls the service never
 *   does (SQLite, for one, gives its journal files the database's owner only as root).
 */
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { SmtpTestClient } from '../../src/testing/index.ts'
import { startCli } from '../daemon/harness.ts'
import { freePort } from '../peers/free-port.ts'

const repo = resolve(import.meta.dirname, '../..')
const units = join(repo, 'contrib/systemd')
const run = promisify(execFile)
/** Where the units expect the command (docs/running.md links it there). */
const installedCommand = '/usr/local/bin/qtsmtpd'

function missing(program: string, pkg: string): string | false {
  try {
    execFileSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' })
    return false
  } catch {
    return `${program} is not installed (Debian package ${pkg})`
  }
}

/** `Key=value` settings of a unit file, in order (a key may repeat). */
function settings(text: string): [string, string][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('[') && l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])
}

async function services(): Promise<{ name: string; settings: [string, string][] }[]> {
  const names = (await readdir(units)).filter((f) => f.endsWith('.service'))
  return Promise.all(
    names.map(async (name) => ({ name, settings: settings(await readFile(join(units, name), 'utf8')) })),
  )
}

/** The system calls in a systemd syscall group, nested groups expanded. */
function syscallGroup(group: string, seen = new Set<string>()): Set<string> {
  const out = execFileSync('systemd-analyze', ['syscall-filter', group], { encoding: 'utf8' })
  const calls = new Set<string>()
  for (const line of out.split('\n').slice(1)) {
    const item = line.trim().split(/\s/)[0] ?? ''
    if (item === '' || item.startsWith('#')) continue
    if (!item.startsWith('@')) calls.add(item)
    else if (!seen.has(item)) {
      seen.add(item)
      for (const c of syscallGroup(item, seen)) calls.add(c)
    }
  }
  return calls
}

/** What a unit's SystemCallFilter= lines allow: the first is an allow list, `~` lines deny. */
function allowedSyscalls(unit: [string, string][]): Set<string> {
  const filters = unit.filter(([k]) => k === 'SystemCallFilter').map(([, v]) => v)
  assert.ok(filters.length > 0 && !filters[0]?.startsWith('~'), 'the unit has an allow-list SystemCallFilter=')
  const allowed = new Set<string>()
  for (const filter of filters) {
    const deny = filter.startsWith('~')
    for (const item of filter
      .replace(/^~/, '')
      .split(/\s+/)
      .filter((x) => x !== '')) {
      const calls = item.startsWith('@') ? syscallGroup(item) : new Set([item])
      for (const c of calls) deny ? allowed.delete(c) : allowed.add(c)
    }
  }
  return allowed
}

describe('the systemd units', { timeout: 120_000 }, () => {
  test('systemd-analyze verify has nothing to say about them', {
    skip: missing('systemd-analyze', 'systemd'),
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-units-'))
    try {
      for (const f of await readdir(units)) {
        const text = await readFile(join(units, f), 'utf8')
        await writeFile(join(dir, f), text.replaceAll(installedCommand, join(repo, 'bin/qtsmtpd')))
      }
      for (const set of [
        ['qtsmtpd.socket', 'qtsmtpd-submission.socket', 'qtsmtpd-smtps.socket', 'qtsmtpd.service'],
        ['qtsmtpd-stdio.socket', 'qtsmtpd-stdio@.service'],
        ['qtsmtpd-smtps-stdio.socket', 'qtsmtpd-smtps-stdio@.service'],
      ]) {
        const r = await run('systemd-analyze', ['verify', ...set.map((f) => join(dir, f))]).then(
          ({ stdout, stderr }) => stdout + stderr,
          (e: { stdout: string; stderr: string }) => `${e.stdout}${e.stderr}(failed)`,
        )
        assert.equal(r, '', `systemd-analyze verify ${set.join(' ')}`)
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  test('a service writes only to directories systemd creates for it', async () => {
    for (const unit of await services()) {
      const made = unit.settings.flatMap(([key, value]) => {
        const base = { StateDirectory: '/var/lib', LogsDirectory: '/var/log', RuntimeDirectory: '/run' }[key]
        return base === undefined ? [] : value.split(/\s+/).map((d) => `${base}/${d}`)
      })
      assert.ok(made.includes('/var/lib/qtsmtpd'), `${unit.name} has StateDirectory=qtsmtpd`)
      for (const [key, value] of unit.settings.filter(([k]) => k === 'ReadWritePaths'))
        for (const path of value.split(/\s+/))
          assert.ok(
            made.some((d) => path === d || path.startsWith(`${d}/`)),
            `${unit.name}: ${key}=${path} is no directory systemd creates`,
          )
    }
  })

  test('the program the units run is made by a step of docs/running.md', async () => {
    const running = await readFile(join(repo, 'docs/running.md'), 'utf8')
    for (const unit of await services())
      for (const [key, value] of unit.settings.filter(([k]) => k.startsWith('Exec'))) {
        const program = value.split(/\s+/)[0] ?? ''
        if (program.startsWith('/bin/')) continue
        assert.equal(program, installedCommand, `${unit.name} ${key}`)
      }
    assert.match(running, /^ln -s \/opt\/qtsmtpd\/node_modules\/\.bin\/qtsmtpd \/usr\/local\/bin\/qtsmtpd$/m)
  })

  test('systemd-analyze security rates them 2.0 or better', {
    skip: missing('systemd-analyze', 'systemd'),
  }, async () => {
    for (const unit of ['qtsmtpd.service', 'qtsmtpd-stdio@.service', 'qtsmtpd-smtps-stdio@.service']) {
      const r = await run('systemd-analyze', ['security', '--offline=yes', '--threshold=20', join(units, unit)]).then(
        () => '',
        (e: { stdout: string }) => e.stdout.split('\n').findLast((l) => l.includes('Overall exposure')) ?? e.stdout,
      )
      assert.equal(r, '', unit)
    }
  })

  const asRoot = process.getuid?.() === 0
  describe('every system call qtsmtpd makes is allowed by SystemCallFilter=', {
    skip:
      missing('strace', 'strace') ||
      missing('systemd-analyze', 'systemd') ||
      (asRoot && missing('setpriv', 'util-linux')),
  }, () => {
    let dir: string
    let used: Set<string>
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-strace-'))
      const config = join(dir, 'config')
      const writable = join(dir, 'var')
      await mkdir(config)
      await mkdir(writable)
      // Readable by nobody, and one directory it may write (spool, maildir, the trace).
      await chmod(dir, 0o755)
      await chmod(writable, 0o777)
      await writeFile(join(config, 'me'), 'mx.test\n')
      await writeFile(join(config, 'loglevel'), '6\n')
      await writeFile(join(config, 'rcpthosts'), 'mx.test\n')
      await writeFile(join(config, 'spool_dir'), `${join(writable, 'spool')}\n`)
      await writeFile(join(config, 'plugins'), `rcpt_ok\nqueue/maildir ${join(writable, 'maildir')}\n`)
      const port = await freePort()
      const trace = join(writable, 'trace')
      // As systemd starts it: as its own user from the start, the launcher finds Node.js 24
      // itself, signals go to the primary.
      const nobody = asRoot ? ['--reuid=65534', '--regid=65534', '--clear-groups', 'strace'] : []
      const cli = startCli(
        [
          ...nobody,
          '-f',
          '-qq',
          '-o',
          trace,
          join(repo, 'bin/qtsmtpd'),
          '--config',
          config,
          '--listen',
          `127.0.0.1:${port}`,
          '--workers',
          '2',
        ],
        { command: asRoot ? 'setpriv' : 'strace', env: { PATH: '/usr/bin:/bin' }, cwd: dir },
      )
      try {
        const pid = Number((await cli.waitFor(/primary \(pid (\d+)\)/, 60_000))[1])
        await cli.waitFor(/all 2 workers ready/, 60_000)
        const c = await SmtpTestClient.connect(port)
        await c.expect(220)
        await c.send('EHLO client.test', 250)
        await c.send('MAIL FROM:<a@client.test>', 250)
        await c.send('RCPT TO:<b@mx.test>', 250)
        await c.send('DATA', 354)
        await c.send('Subject: traced\r\n\r\nhello\r\n.', 250)
        await c.quit()
        process.kill(pid, 'SIGHUP')
        await cli.waitFor(/configuration reloaded/, 60_000)
        process.kill(pid, 'SIGTERM')
        assert.equal((await cli.exited(60_000)).code, 0)
      } finally {
        cli.kill('SIGKILL')
      }
      used = new Set()
      for (const line of (await readFile(trace, 'utf8')).split('\n')) {
        const call = /^\d+ +([a-z0-9_]+)\(/.exec(line)?.[1]
        if (call !== undefined) used.add(call)
      }
    })
    after(() => rm(dir, { recursive: true, force: true }))

    for (const unit of ['qtsmtpd.service', 'qtsmtpd-stdio@.service', 'qtsmtpd-smtps-stdio@.service'])
      test(unit, async () => {
        assert.ok(used.has('execve') && used.has('fsync'), 'the trace covers the start and a delivery')
        const allowed = allowedSyscalls(settings(await readFile(join(units, unit), 'utf8')))
        assert.deepEqual([...used].filter((c) => !allowed.has(c)).sort(), [])
      })
  })
})
