/**
 * The logging plugins that write to stderr or to one file, through real sessions:
 * logging/devnull, connection_id, transaction_id, adaptive, apache, and the JSON lines of
 * logging/warn read back by the real pino-pretty.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { definePlugin } from '../../host/define-plugin.ts'
import { parsePluginArgs } from '../../host/options.ts'
import { pass, reject } from '../../host/verdict.ts'
import { startTestServer, type TestServer } from '../../testing/index.ts'
import { acceptRcpt, sendMail } from '../test-support.ts'
import logAdaptive from './adaptive.ts'
import logApache, { translateApacheArgs } from './apache.ts'
import logConnectionId from './connection-id.ts'
import logDevnull from './devnull.ts'
import { idLine } from './session-ids.ts'
import logTransactionId from './transaction-id.ts'
import logWarn from './warn.ts'

/** Logs `probe <level> <hook>` at levels 2-7 in connect and mail; refuses RCPT to refuse@. */
const probe = definePlugin({
  name: 'test/probe',
  options: {},
  setup: () => {
    const all = (ctx: { log: { log(l: 2 | 3 | 4 | 5 | 6 | 7, m: string): void } }, hook: string) => {
      for (const level of [2, 3, 4, 5, 6, 7] as const) ctx.log.log(level, `probe ${level} ${hook}`)
    }
    return {
      hooks: {
        connect: (ctx) => {
          all(ctx, 'connect')
          return pass()
        },
        mail: (ctx) => {
          all(ctx, 'mail')
          return pass()
        },
        rcpt: (_ctx, to) =>
          to.address.local === 'refuse' ? reject({ code: 550, enhanced: '5.7.1', text: 'refused by probe' }) : pass(),
      },
    }
  },
})

let base: string
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'qtsmtpd-logging-plugins-'))
})
after(async () => {
  await rm(base, { recursive: true, force: true })
})

/** What the plugins write to stderr while `run` runs. */
async function stderrOf(run: () => Promise<void>): Promise<string[]> {
  const captured: string[] = []
  const original = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array) => {
    captured.push(String(chunk))
    return true
  }) as typeof process.stderr.write
  try {
    await run()
  } finally {
    process.stderr.write = original
  }
  return captured.join('').split('\n').filter(Boolean)
}

/** One session; `rcpt` picks the recipient (refuse@ is refused by the probe). Returns the queue id, if any. */
async function session(srv: TestServer, rcpt = 'b@example.com'): Promise<string | undefined> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO one.test', 250)
  let id: string | undefined
  if (rcpt.startsWith('refuse@')) {
    await c.send('MAIL FROM:<a@example.org>', 250)
    await c.send(`RCPT TO:<${rcpt}>`, 550)
  } else {
    const r = await sendMail(c, 'a@example.org', [rcpt], 'Subject: x\r\n\r\nx\r\n')
    id = /Queued as (\S+)/.exec(r.raw)?.[1]
  }
  await c.quit()
  await c.closed()
  return id
}

const probes = (lines: readonly string[]) => lines.filter((l) => / probe \d /.test(l))

describe('logging/devnull', () => {
  it('drops every entry: nothing on stderr, nothing reaches the built-in output', async () => {
    let srv: TestServer | undefined
    const out = await stderrOf(async () => {
      srv = await startTestServer({ plugins: [probe(), acceptRcpt(), logDevnull()] })
      await session(srv)
      await srv.close()
    })
    assert.deepEqual(out, [])
    assert.deepEqual(
      srv?.logs.filter((e) => e.message.includes('probe')),
      [],
    )
  })
})

describe('logging/connection_id and logging/transaction_id', () => {
  it('connection_id: every line starts with the session id, then "<plugin> plugin:"', async () => {
    let sessionId = ''
    const out = await stderrOf(async () => {
      const srv = await startTestServer({ plugins: [probe(), acceptRcpt(), logConnectionId({ loglevel: 'LOGINFO' })] })
      await session(srv)
      await srv.close()
    })
    sessionId = /^(\S+) summary ip=127\.0\.0\.1 /m.exec(out.join('\n'))?.[1] ?? ''
    assert.notEqual(sessionId, '')
    assert.deepEqual(
      probes(out).filter((l) => l.endsWith('connect')),
      [2, 3, 4, 5, 6].map((n) => `${sessionId} test/probe plugin: probe ${n} connect`),
    )
  })

  it('transaction_id: lines of a transaction start with its queue id, others with ???', async () => {
    let id: string | undefined
    const out = await stderrOf(async () => {
      const srv = await startTestServer({ plugins: [probe(), acceptRcpt(), logTransactionId({ loglevel: '6' })] })
      id = await session(srv)
      await srv.close()
    })
    assert.match(id ?? '', /^[0-9a-z]{22}$/)
    const p = probes(out)
    assert.deepEqual(
      p.filter((l) => l.endsWith('mail')),
      [2, 3, 4, 5, 6].map((n) => `${id} test/probe plugin: probe ${n} mail`),
    )
    assert.deepEqual(
      p.filter((l) => l.endsWith('connect')),
      [2, 3, 4, 5, 6].map((n) => `??? test/probe plugin: probe ${n} connect`),
    )
    // The core's accepted line belongs to the transaction; the summary line does not.
    assert.ok(out.includes(out.find((l) => l.startsWith(`${id} accepted id=${id} `)) ?? '<none>'), out.join('\n'))
    assert.ok(out.some((l) => l.startsWith('??? summary ip=')))
  })

  it('formats as qpsmtpd: "<id> <plugin> plugin:", "<id> running plugin (<hook>):", "???"', () => {
    const time = new Date()
    assert.equal(idLine('c1', { level: 4, time, message: 'm', plugin: 'p', hook: 'rcpt' }), 'c1 p plugin: m\n')
    assert.equal(idLine('c1', { level: 4, time, message: 'm', hook: 'rcpt' }), 'c1 running plugin (rcpt): m\n')
    assert.equal(idLine(undefined, { level: 4, time, message: 'm' }), '??? m\n')
    assert.deepEqual(parsePluginArgs(logConnectionId.definition.options, ['LOGDEBUG']), { loglevel: 'LOGDEBUG' })
  })
})

describe('logging/adaptive', () => {
  const adaptive = () => logAdaptive({ accept: 'LOGWARN', reject: 'LOGDEBUG' })

  it('a session that goes well: only the entries at or under accept', async () => {
    const out = await stderrOf(async () => {
      const srv = await startTestServer({ plugins: [probe(), acceptRcpt(), adaptive()] })
      await session(srv)
      await srv.close()
    })
    assert.deepEqual(
      probes(out).map((l) => l.replace(/^\d+ \S+ \((\w+)\) /, '<pid> <id> ($1) ')),
      ['connect', 'mail'].flatMap((h) => [2, 3, 4].map((n) => `<pid> <id> (${h}) test/probe: probe ${n} ${h}`)),
    )
    assert.ok(!out.some((l) => l.includes('summary ip=')))
  })

  it('a session a plugin refuses: the kept detail, marked with the prefix, then the rest of the session', async () => {
    const out = await stderrOf(async () => {
      const srv = await startTestServer({ plugins: [probe(), acceptRcpt(), adaptive()] })
      await session(srv, 'refuse@example.com')
      await srv.close()
    })
    const shown = out.map((l) => l.replace(/^\d+ (` )?\S+ /, (_m, detail?: string) => (detail ? '<pid> ` ' : '<pid> ')))
    const p = shown.filter((l) => / probe \d /.test(l))
    // At or under accept: at once. Above: kept until the refusal, then written in order with the prefix.
    assert.deepEqual(p, [
      ...[2, 3, 4].map((n) => `<pid> (connect) test/probe: probe ${n} connect`),
      ...[2, 3, 4].map((n) => `<pid> (mail) test/probe: probe ${n} mail`),
      ...[5, 6, 7].map((n) => `<pid> \` (connect) test/probe: probe ${n} connect`),
      ...[5, 6, 7].map((n) => `<pid> \` (mail) test/probe: probe ${n} mail`),
    ])
    assert.ok(
      shown.some((l) => l.startsWith('<pid> ` refused cmd=RCPT ')),
      shown.join('\n'),
    )
    assert.ok(
      shown.some((l) => l.startsWith('<pid> ` summary ip=127.0.0.1 ')),
      shown.join('\n'),
    )
  })

  it("a refusal by the core (a syntax error) counts too; the kept entries are bounded by 'buffer'", async () => {
    const out = await stderrOf(async () => {
      const srv = await startTestServer({
        plugins: [probe(), acceptRcpt(), logAdaptive({ accept: 'LOGWARN', reject: 'LOGDEBUG', buffer: 40 })],
      })
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO one.test', 250)
      await c.send('MAIL FROM:<a@example.org', 501)
      await c.quit()
      await c.closed()
      await srv.close()
    })
    // 40 bytes hold the last two of connect's detail entries ("probe N connect" is 15 characters).
    const detail = out.filter((l) => /^\d+ ` /.test(l)).map((l) => l.replace(/^\d+ ` \S+ /, ''))
    assert.deepEqual(detail.slice(0, 3), [
      'logging/adaptive: 1 earlier entries dropped',
      '(connect) test/probe: probe 6 connect',
      '(connect) test/probe: probe 7 connect',
    ])
    assert.match(detail[3] ?? '', /^refused cmd=MAIL ip=127\.0\.0\.1 helo=one\.test from=<a@example\.org reply="501 /)
  })
})

describe('logging/apache', () => {
  it("writes Apache's error log format to the file given", async () => {
    const file = join(base, 'apache-error.log')
    const srv = await startTestServer({
      plugins: [probe(), acceptRcpt(), logApache({ path: file, loglevel: 'LOGNOTICE' })],
    })
    await session(srv)
    await srv.close()
    const lines = probes((await readFile(file, 'utf8')).split('\n')).filter((l) => l.endsWith('connect'))
    assert.deepEqual(
      lines.map((l) =>
        l
          .replace(/^\[[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d\.\d{6} \d{4}\] /, '[<time>] ')
          .replace(/\] \S+ test/, '] <id> test'),
      ),
      [
        `[<time>] [perl:crit] [pid ${process.pid}] <id> test/probe plugin: probe 2 connect`,
        `[<time>] [perl:error] [pid ${process.pid}] <id> test/probe plugin: probe 3 connect`,
        `[<time>] [perl:warn] [pid ${process.pid}] <id> test/probe plugin: probe 4 connect`,
        `[<time>] [perl:notice] [pid ${process.pid}] <id> test/probe plugin: probe 5 connect`,
      ],
    )
  })

  it("without a file, qpsmtpd's bare line stops the start and says why", async () => {
    const dir = await mkdtemp(join(base, 'apache-'))
    await mkdir(join(dir, 'config'))
    await writeFile(join(dir, 'config', 'plugins'), 'logging/apache\n')
    await assert.rejects(
      startTestServer({ configDir: join(dir, 'config'), plugins: [acceptRcpt()] }),
      /plugins:1: plugin logging\/apache: qpsmtpd's logging\/apache wrote to Apache's ErrorLog through mod_perl \(Apache::Qpsmtpd\), and qtsmtpd is not an Apache module: name the file to write/,
    )
    assert.deepEqual(translateApacheArgs(['loglevel', 'LOGINFO', '/var/log/a b.log']), [
      'loglevel',
      'LOGINFO',
      'path',
      '/var/log/a b.log',
    ])
  })
})

describe('log_format json', () => {
  it('logging/warn writes pino lines (the server default from smtpd.conf), and pino-pretty reads them', async () => {
    const dir = await mkdtemp(join(base, 'json-'))
    await mkdir(join(dir, 'config'))
    await writeFile(join(dir, 'config', 'smtpd.conf'), 'log_format json\n')
    await writeFile(join(dir, 'config', 'plugins'), 'logging/warn LOGINFO\n')
    let id: string | undefined
    const out = await stderrOf(async () => {
      const srv = await startTestServer({ configDir: join(dir, 'config'), plugins: [probe(), acceptRcpt()] })
      id = await session(srv)
      await srv.close()
    })
    const records = out.map((l) => JSON.parse(l) as Record<string, unknown>)
    const accepted = records.find((r) => String(r.msg).startsWith('accepted '))
    assert.ok(accepted)
    assert.deepEqual(Object.keys(accepted), ['level', 'time', 'pid', 'hostname', 'session', 'txn', 'msg'])
    assert.equal(accepted.level, 30)
    assert.equal(accepted.txn, id)
    assert.equal(accepted.pid, process.pid)
    assert.equal(accepted.hostname, hostname())
    assert.ok(Math.abs(Number(accepted.time) - Date.now()) < 60_000)
    const mailProbe = records.find((r) => r.msg === 'probe 3 mail')
    assert.deepEqual(
      { ...mailProbe, time: 0 },
      {
        level: 50,
        time: 0,
        pid: process.pid,
        hostname: hostname(),
        session: accepted.session,
        txn: id,
        plugin: 'test/probe',
        hook: 'mail',
        msg: 'probe 3 mail',
      },
    )
    assert.deepEqual(
      records.filter((r) => String(r.msg).endsWith(' connect')).map((r) => [r.level, r.msg]),
      [
        [60, 'probe 2 connect'],
        [50, 'probe 3 connect'],
        [40, 'probe 4 connect'],
        [30, 'probe 5 connect'],
        [30, 'probe 6 connect'],
      ],
    )
    const pretty = execFileSync(
      process.execPath,
      [
        join(import.meta.dirname, '../../../node_modules/pino-pretty/bin.js'),
        '-S',
        '-t',
        "UTC:yyyy-mm-dd'T'HH:MM:ss.l'Z'",
      ],
      { input: `${out.join('\n')}\n`, env: { ...process.env, NO_COLOR: '1' } },
    ).toString()
    const stamp = new Date(Number(mailProbe?.time)).toISOString()
    assert.ok(
      pretty.includes(
        `[${stamp}] ERROR (${process.pid}): probe 3 mail {"session":"${accepted.session}","txn":"${id}","plugin":"test/probe","hook":"mail"}\n`,
      ),
      pretty,
    )
    assert.match(pretty, /\] FATAL \(\d+\): probe 2 connect /)
    assert.match(pretty, /\] INFO \(\d+\): summary ip=127\.0\.0\.1 helo=one\.test /)
  })

  it('an unknown log_format stops the start at its line', async () => {
    const dir = await mkdtemp(join(base, 'json-bad-'))
    await mkdir(join(dir, 'config'))
    await writeFile(join(dir, 'config', 'smtpd.conf'), 'log_format yaml\n')
    await assert.rejects(
      startTestServer({ configDir: join(dir, 'config'), plugins: [acceptRcpt()] }),
      /smtpd\.conf:1: expected text or json, got "yaml"/,
    )
  })

  it("a plugin's own format overrides the server's", async () => {
    const out = await stderrOf(async () => {
      const srv = await startTestServer({
        plugins: [probe(), acceptRcpt(), logWarn({ loglevel: '2', format: 'json' })],
      })
      await session(srv)
      await srv.close()
    })
    assert.deepEqual(
      out.map((l) => (JSON.parse(l) as { msg: string }).msg),
      ['probe 2 connect', 'probe 2 mail'],
    )
  })
})
