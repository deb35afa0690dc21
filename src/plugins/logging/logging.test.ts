import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { definePlugin } from '../../host/define-plugin.ts'
import { parsePluginArgs } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import { startTestServer, type TestServer } from '../../testing/index.ts'
import { acceptRcpt, sendMail } from '../test-support.ts'
import logFile, { translateFileArgs } from './file.ts'
import { strftime } from './strftime.ts'
import logWarn, { warnLine } from './warn.ts'

/** Logs one entry per level when a client connects. */
const probe = definePlugin({
  name: 'test/probe',
  options: {},
  setup: () => ({
    hooks: {
      connect: (ctx) => {
        for (const level of [2, 3, 4, 5, 6, 7] as const) ctx.log.log(level, `probe ${level}`)
        return pass()
      },
    },
  }),
})

let base: string
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'qtsmtpd-logging-test-'))
})
after(async () => {
  await rm(base, { recursive: true, force: true })
})

async function session(srv: TestServer, helo: string): Promise<void> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send(`EHLO ${helo}`, 250)
  await sendMail(c, 'a@example.org', ['b@example.com'], 'Subject: x\r\n\r\nx\r\n')
  await c.quit()
  await c.closed()
}

const host = hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('strftime', () => {
  const d = new Date(2026, 10, 5, 7, 3, 9)
  const cases = [
    { f: '%Y-%m-%d %H:%M:%S', want: '2026-11-05 07:03:09' },
    { f: '%a %b %d %T %Y', want: 'Thu Nov 05 07:03:09 2026' },
    { f: '%F %e %j %y %I%p %%i %Q', want: '2026-11-05  5 309 26 07AM %i %Q' },
  ]
  for (const c of cases) it(c.f, () => assert.equal(strftime(c.f, d), c.want))
})

describe('logging/file arguments', () => {
  it("reads qpsmtpd's syntax: leading keywords, then the path (spaces kept)", () => {
    const args = translateFileArgs(['loglevel', 'LOGINFO', 'reopen', 'nosplit', 'tsformat', '%F', '/var/log/a b.%Y'])
    assert.deepEqual(parsePluginArgs(logFile.definition.options, args), {
      path: '/var/log/a b.%Y',
      loglevel: 'LOGINFO',
      reopen: true,
      nosplit: true,
      tsformat: '%F',
      format: undefined,
    })
    assert.deepEqual(parsePluginArgs(logFile.definition.options, translateFileArgs(['/var/log/q.log'])), {
      path: '/var/log/q.log',
      loglevel: '4',
      reopen: false,
      nosplit: false,
      tsformat: '%a %b %d %T %Y',
      format: undefined,
    })
  })

  it('refuses a log directory that does not exist; with a date in it, the part before the date must exist', async () => {
    const refused = async (path: string, why: string) => {
      const started = await startTestServer({ plugins: [logFile({ path })] }).then(
        (srv) => srv.close(),
        (e: Error) => e,
      )
      assert.ok(started instanceof Error && started.message.includes(why), `${path}: ${String(started)}`)
    }
    await refused(join(base, 'missing', 'q.log'), `log directory ${join(base, 'missing')} does not exist`)
    await refused(join(base, 'missing', '%Y', 'q.log'), `log directory ${join(base, 'missing')} does not exist`)
    const file = join(base, 'a-file')
    await writeFile(file, '')
    await refused(join(file, 'q.log'), `log directory ${file} is not a directory`)
  })

  it('refuses |command outputs and bad levels at start-up', async () => {
    await assert.rejects(
      startTestServer({ plugins: [logFile({ path: '|/usr/bin/logger -t qp' })] }),
      /"\|command" log outputs are not supported \(plugins never run a shell\)/,
    )
    await assert.rejects(
      startTestServer({ plugins: [logFile({ path: join(base, 'x.log'), loglevel: 'LOGLOUD' })] }),
      /loglevel: expected 0-7/,
    )
  })
})

describe('logging/file', () => {
  it('writes entries at or under its level, with the time stamp format and a strftime file name', async () => {
    const srv = await startTestServer({
      plugins: [
        probe(),
        acceptRcpt(),
        logFile({ path: join(base, 'qp.%Y-%m-%d.log'), loglevel: 'LOGNOTICE', tsformat: '%F %T' }),
      ],
    })
    await session(srv, 'one.test')
    await srv.close()
    const name = `qp.${strftime('%Y-%m-%d', new Date())}.log`
    assert.deepEqual(await readdir(base).then((l) => l.filter((f) => f.startsWith('qp.'))), [name])
    const lines = (await readFile(join(base, name), 'utf8')).split('\n').filter((l) => l !== '')
    const probes = lines.filter((l) => l.includes('probe'))
    const stamp = `\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d ${host}\\[${process.pid}\\]:`
    assert.deepEqual(
      probes.map((l) => l.replace(new RegExp(`^${stamp}`), '<stamp>').replace(/ \S+ \(connect\) /, ' <id> (connect) ')),
      [
        '<stamp> <id> (connect) test/probe: probe 2',
        '<stamp> <id> (connect) test/probe: probe 3',
        '<stamp> <id> (connect) test/probe: probe 4',
        '<stamp> <id> (connect) test/probe: probe 5',
      ],
    )
    // Info entries (level 6, e.g. the session summary) are above LOGNOTICE.
    assert.ok(!lines.some((l) => l.includes('summary ip=')))
  })

  it('lines logged while the plugins after it are set up reach the file, not the fallback (stderr)', async () => {
    const announces = definePlugin({
      name: 'test/announces',
      options: {},
      setup: ({ log }) => {
        log.notice('ready to announce')
        return { hooks: {} }
      },
    })
    const file = join(base, 'setup.log')
    const srv = await startTestServer({ plugins: [logFile({ path: file, loglevel: 'LOGINFO' }), announces()] })
    await srv.close()
    assert.match(await readFile(file, 'utf8'), / test\/announces: ready to announce\n/)
    assert.ok(!srv.logs.some((e) => e.message === 'ready to announce'), 'not on the fallback writer')
  })

  it('%i starts one file per session; session entries carry the session id', async () => {
    const dir = await mkdtemp(join(base, 'sessions-'))
    const srv = await startTestServer({
      plugins: [acceptRcpt(), logFile({ path: join(dir, 'qp-%i.log'), loglevel: '6' })],
    })
    await session(srv, 'one.test')
    await session(srv, 'two.test')
    await srv.close()
    const files = (await readdir(dir)).filter((f) => f !== 'qp-parent.log').sort()
    assert.equal(files.length, 2, files.join(' '))
    const helos = []
    for (const f of files) {
      const id = (/^qp-(.+)\.log$/.exec(f)?.[1] ?? '').replace(/\./g, '\\.')
      const text = await readFile(join(dir, f), 'utf8')
      const summary = new RegExp(
        `^[A-Z][a-z]{2} [A-Z][a-z]{2} \\d\\d \\d\\d:\\d\\d:\\d\\d \\d{4} ${host}\\[${process.pid}\\]: ${id} summary ip=127\\.0\\.0\\.1 helo=(\\w+)\\.test `,
        'm',
      )
      const m = summary.exec(text)
      assert.ok(m, text)
      helos.push(m[1])
      assert.match(text, new RegExp(`: ${id} accepted id=[0-9a-z]{22} ip=127\\.0\\.0\\.1 `))
    }
    assert.deepEqual(helos.sort(), ['one', 'two'])
  })

  it(':N instances log to their own files at their own levels', async () => {
    const a = join(base, 'warn-only.log')
    const b = join(base, 'debug.log')
    const srv = await startTestServer({
      plugins: [
        probe(),
        acceptRcpt(),
        { ...logFile({ path: a, loglevel: 'LOGWARN' }) },
        { ...logFile({ path: b, loglevel: 'LOGDEBUG' }), instance: '2' },
      ],
    })
    await session(srv, 'one.test')
    await srv.close()
    const probesIn = async (f: string) =>
      (await readFile(f, 'utf8'))
        .split('\n')
        .filter((l) => / probe \d$/.test(l))
        .map((l) => l.slice(-1))
    assert.deepEqual(await probesIn(a), ['2', '3', '4'])
    assert.deepEqual(await probesIn(b), ['2', '3', '4', '5', '6', '7'])
  })
})

describe('logging/warn', () => {
  it("writes qpsmtpd's stderr format at or under its level", async () => {
    const captured: string[] = []
    const original = process.stderr.write.bind(process.stderr)
    process.stderr.write = ((chunk: string | Uint8Array) => {
      captured.push(String(chunk))
      return true
    }) as typeof process.stderr.write
    try {
      const srv = await startTestServer({ plugins: [probe(), acceptRcpt(), logWarn({ loglevel: 'LOGWARN' })] })
      await session(srv, 'one.test')
      await srv.close()
    } finally {
      process.stderr.write = original
    }
    const probes = captured.filter((l) => l.includes('probe'))
    assert.deepEqual(
      probes.map((l) => l.replace(/ \S+ \(connect\) /, ' <id> (connect) ')),
      [2, 3, 4].map((n) => `${process.pid} <id> (connect) test/probe: probe ${n}\n`),
    )
    assert.ok(!captured.some((l) => l.includes('summary ip=')))
  })

  it('formats session, hook and plugin as qpsmtpd does', () => {
    const time = new Date()
    assert.equal(warnLine({ level: 4, time, message: 'm' }, 7), '7 m\n')
    assert.equal(warnLine({ level: 4, time, message: 'm', connection: 'c1' }, 7), '7 c1 m\n')
    assert.equal(warnLine({ level: 4, time, message: 'm', plugin: 'p', hook: 'rcpt' }, 7), '7 (rcpt) p: m\n')
    assert.equal(warnLine({ level: 4, time, message: 'm', hook: 'rcpt' }, 7), '7 (rcpt) running plugin: m\n')
    assert.deepEqual(parsePluginArgs(logWarn.definition.options, ['LOGINFO']), {
      loglevel: 'LOGINFO',
      format: undefined,
    })
    assert.deepEqual(parsePluginArgs(logWarn.definition.options, ['6']), { loglevel: '6', format: undefined })
  })
})

describe('loading from config/plugins', () => {
  it('qpsmtpd names and argument syntax, with :N instances', async () => {
    const dir = await mkdtemp(join(base, 'config-'))
    const { mkdir, writeFile } = await import('node:fs/promises')
    await mkdir(join(dir, 'config'))
    const plugins = [
      `logging/file loglevel LOGINFO nosplit ${join(dir, 'info.log')}`,
      `logging/file:2 loglevel 3 tsformat %F ${join(dir, 'errors.log')}`,
      'auth/auth_flat_file',
      `queue/maildir ${join(dir, 'maildir')} %d/%l 750`,
    ]
    await writeFile(join(dir, 'config', 'plugins'), `${plugins.join('\n')}\n`)
    await writeFile(join(dir, 'config', 'me'), 'mx.test\n')
    await writeFile(join(dir, 'config', 'flat_auth_pw'), 'a@example.com:pw\n')
    const srv = await startTestServer({ configDir: join(dir, 'config'), plugins: [acceptRcpt()] })
    const names = srv.runtime.runner.plugins.map((p) => p.name)
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO cfg.test', 250)
    await c.quit()
    await c.closed()
    await srv.close()
    assert.deepEqual(names.slice(0, 4), ['logging/file', 'logging/file:2', 'auth/auth_flat_file', 'queue/maildir'])
    assert.match(await readFile(join(dir, 'info.log'), 'utf8'), / summary ip=127\.0\.0\.1 helo=cfg\.test /)
    // Nothing at LOGERROR or worse was logged, so the second instance opened no file.
    assert.deepEqual((await readdir(dir)).sort(), ['config', 'info.log', 'maildir'])
    assert.equal((await stat(join(dir, 'maildir'))).mode & 0o777, 0o750)
  })
})
