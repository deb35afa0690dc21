/**
 * logging/syslog through real sessions: the exact bytes on UDP and TCP (RFC 5424, RFC 3164,
 * both TCP framings), a real rsyslogd parsing what the local socket, UDP and TCP get, and a
 * receiver that is down: sessions never wait, the queue is bounded, and what was kept arrives.
 */
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { type Rsyslog, startRsyslog } from '../../../test/peers/rsyslog.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { parsePluginArgs } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import { startTestServer, type TestServer } from '../../testing/index.ts'
import { acceptRcpt, sendMail } from '../test-support.ts'
import logSyslog, { parseServer } from './syslog.ts'
import { frame, truncateUtf8 } from './syslog-format.ts'

/** Logs `probe N` at notice and warn, with a character outside ASCII, in connect. */
const probe = definePlugin({
  name: 'test/probe',
  options: {},
  setup: () => ({
    hooks: {
      connect: (ctx) => {
        ctx.log.notice('probe 5 é')
        ctx.log.warn('probe 4')
        return pass()
      },
    },
  }),
})

async function session(srv: TestServer): Promise<string> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO one.test', 250)
  const r = await sendMail(c, 'a@example.org', ['b@example.com'], 'Subject: x\r\n\r\nx\r\n')
  await c.quit()
  await c.closed()
  return /Queued as (\S+)/.exec(r.raw)?.[1] ?? ''
}

/** The session id, from rsyslog's line for the summary the core logs at the end of each session. */
const sessionIdIn = (lines: readonly string[]): string =>
  / msg= ?(\S+) summary ip=127\.0\.0\.1/.exec(lines.find((l) => l.includes(' summary ip=')) ?? '')?.[1] ?? ''

const iso = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z'
const bsd = '[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d'
const pid = process.pid

async function udpReceiver(): Promise<{ port: number; got: Buffer[]; close(): void }> {
  const got: Buffer[] = []
  const s = createSocket('udp4')
  s.on('message', (m) => got.push(m))
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))
  return { port: s.address().port, got, close: () => s.close() }
}

async function tcpReceiver(port = 0): Promise<{ port: number; bytes(): Buffer; close(): Promise<void> }> {
  const chunks: Buffer[] = []
  const clients = new Set<Socket>()
  const server: Server = createServer((c) => {
    clients.add(c)
    c.on('data', (d) => chunks.push(d))
  })
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()))
  const address = server.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    bytes: () => Buffer.concat(chunks),
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r())
        for (const c of clients) c.destroy()
      }),
  }
}

/** RFC 6587 octet-counted frames: `LEN SP MSG`, back to back. */
function octetFrames(bytes: Buffer): string[] {
  const out: string[] = []
  let at = 0
  while (at < bytes.length) {
    const space = bytes.indexOf(0x20, at)
    const length = Number(bytes.subarray(at, space).toString())
    assert.ok(space > at && Number.isInteger(length), `a frame at byte ${at}`)
    out.push(bytes.subarray(space + 1, space + 1 + length).toString('utf8'))
    at = space + 1 + length
  }
  return out
}

const until = async (f: () => boolean, what: string, ms = 10_000) => {
  const deadline = Date.now() + ms
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('logging/syslog, exact bytes', () => {
  it('UDP: one RFC 5424 message per datagram, facility mail, the session and plugin in MSG', async () => {
    const rx = await udpReceiver()
    const srv = await startTestServer({
      plugins: [
        probe(),
        acceptRcpt(),
        logSyslog({ logsock: 'udp', server: `127.0.0.1:${rx.port}`, loglevel: 'LOGNOTICE' }),
      ],
    })
    await session(srv)
    await srv.close()
    await until(() => rx.got.length >= 2, 'two datagrams')
    rx.close()
    const texts = rx.got.map((b) => b.toString('utf8'))
    const id = /^<21>1 \S+ mx\.test qtsmtpd \d+ - - (\S+) /.exec(texts[0] ?? '')?.[1] ?? ''
    assert.deepEqual(
      texts.map((t) => t.replace(new RegExp(iso), '<time>')),
      [
        `<21>1 <time> mx.test qtsmtpd ${pid} - - ${id} (connect) test/probe: probe 5 é`,
        `<20>1 <time> mx.test qtsmtpd ${pid} - - ${id} (connect) test/probe: probe 4`,
      ],
    )
    assert.equal(rx.got[0]?.length, Buffer.byteLength(texts[0] ?? ''))
  })

  it('TCP: octet counting (RFC 6587), or a newline; rfc 3164 with a fixed priority and facility', async () => {
    const a = await tcpReceiver()
    const b = await tcpReceiver()
    const srv = await startTestServer({
      plugins: [
        probe(),
        acceptRcpt(),
        logSyslog({ logsock: 'tcp', server: `127.0.0.1:${a.port}`, loglevel: 'LOGNOTICE', ident: 'mx-in' }),
        {
          ...logSyslog({
            logsock: 'tcp',
            server: `127.0.0.1:${b.port}`,
            loglevel: 'LOGWARN',
            rfc: '3164',
            framing: 'newline',
            facility: 'LOG_LOCAL3',
            priority: 'LOG_ERR',
          }),
          instance: '2',
        },
      ],
    })
    await session(srv)
    await srv.close()
    const first = a.bytes().toString('utf8')
    const second = b.bytes().toString('utf8')
    await Promise.all([a.close(), b.close()])
    const m = new RegExp(
      `^(\\d+) (<21>1 ${iso} mx\\.test mx-in ${pid} - - (\\S+) \\(connect\\) test/probe: probe 5 é)`,
    ).exec(first)
    assert.ok(m, first)
    assert.equal(Number(m[1]), Buffer.byteLength(m[2] ?? ''))
    const id = m[3]
    const rest = first.slice((m[0] as string).length)
    assert.match(
      rest,
      new RegExp(`^\\d+ <20>1 ${iso} mx\\.test mx-in ${pid} - - ${id} \\(connect\\) test/probe: probe 4$`),
    )
    // local3 (19) * 8 + err (3) = 155, whatever the entry's level.
    assert.match(
      second,
      new RegExp(`^<155>${bsd} mx\\.test qtsmtpd\\[${pid}\\]: ${id} \\(connect\\) test/probe: probe 4\\n$`),
    )
  })

  it('reads qpsmtpd arguments; refuses what it cannot do at start-up', async () => {
    assert.deepEqual(
      parsePluginArgs(logSyslog.definition.options, [
        'loglevel',
        'LOGINFO',
        'priority',
        'LOG_NOTICE',
        'logsock',
        'udp,unix',
      ]),
      {
        loglevel: 'LOGINFO',
        priority: 'LOG_NOTICE',
        ident: 'qtsmtpd',
        facility: 'LOG_MAIL',
        logsock: 'udp,unix',
        socket: '/dev/log',
        server: '127.0.0.1:514',
        rfc: '5424',
        framing: 'octet-counting',
        queue: 1_048_576,
        max_message: 8192,
      },
    )
    assert.deepEqual(parseServer('[::1]:6514'), { host: '::1', port: 6514 })
    assert.deepEqual(parseServer('logs.example'), { host: 'logs.example', port: 514 })
    const refused = [
      [
        { logsock: 'unix', socket: '/nonexistent/log' },
        /\/nonexistent\/log is not a socket \(is a syslog daemon running\?\)/,
      ],
      [{ logsock: 'console' }, /logsock console is not supported \(use unix, udp or tcp\)/],
      [{ logsock: 'udp', facility: 'LOG_NOPE' }, /facility: expected LOG_MAIL/],
      [{ logsock: 'udp', server: 'a:99999' }, /server: expected HOST, HOST:PORT/],
      [{ logsock: 'udp', ident: 'two words' }, /ident/],
    ] as const
    for (const [options, message] of refused)
      await assert.rejects(async () => startTestServer({ plugins: [acceptRcpt(), logSyslog(options)] }), message)
  })

  it('cuts a long message at max_message bytes, never inside a character', () => {
    assert.equal(truncateUtf8('aé', 2).toString(), 'a')
    assert.equal(truncateUtf8('aé', 3).toString(), 'aé')
    assert.equal(frame(Buffer.from('<1>1 x'), 'octet-counting').toString(), '6 <1>1 x')
  })
})

describe('logging/syslog with a real rsyslogd', () => {
  let rs: Rsyslog
  before(async () => {
    rs = await startRsyslog()
  })
  after(async () => {
    await rs?.close()
  })

  it('the local socket (through logger), UDP and TCP are parsed into the same fields', async () => {
    const srv = await startTestServer({
      plugins: [
        probe(),
        acceptRcpt(),
        logSyslog({ socket: rs.socket, loglevel: 'LOGINFO' }),
        { ...logSyslog({ logsock: 'udp', server: `127.0.0.1:${rs.udpPort}`, loglevel: 'LOGINFO' }), instance: '2' },
        { ...logSyslog({ logsock: 'tcp', server: `127.0.0.1:${rs.tcpPort}`, loglevel: 'LOGINFO' }), instance: '3' },
      ],
    })
    const queueId = await session(srv)
    await srv.close()
    const lines = await rs.waitFor(/input=imuxsock .* summary ip=/)
    await rs.waitFor(/input=imudp .* summary ip=/)
    const all = await rs.waitFor(/input=imtcp .* summary ip=/)
    const id = sessionIdIn(all)
    assert.notEqual(id, '', lines.join('\n'))
    for (const input of ['imuxsock', 'imudp', 'imtcp']) {
      const mine = all.filter((l) => l.startsWith(`input=${input} `)).map((l) => l.replace(/msg= ?/, 'msg='))
      const host = input === 'imuxsock' ? '\\S+' : 'mx\\.test'
      const head = `input=${input} fac=mail sev=%s host=${host} app=qtsmtpd procid=${pid} msgid=- sd=- msg=${id}`
      const want = (sev: string, rest: string) => new RegExp(`^${head.replace('%s', sev)} ${rest}$`)
      assert.ok(
        mine.some((l) => want('notice', '\\(connect\\) test/probe: probe 5 é').test(l)),
        mine.join('\n'),
      )
      assert.ok(
        mine.some((l) => want('warning', '\\(connect\\) test/probe: probe 4').test(l)),
        mine.join('\n'),
      )
      assert.ok(mine.some((l) => want('info', `accepted id=${queueId} ip=127\\.0\\.0\\.1 helo=one\\.test .*`).test(l)))
      assert.ok(mine.some((l) => want('info', 'summary ip=127\\.0\\.0\\.1 helo=one\\.test .*').test(l)))
    }
  })

  it('rsyslog restarted: the local logger is started again and later entries arrive', async () => {
    const srv = await startTestServer({
      plugins: [probe(), acceptRcpt(), logSyslog({ socket: rs.socket, loglevel: 'LOGINFO' })],
    })
    const captured: string[] = []
    const original = process.stderr.write.bind(process.stderr)
    process.stderr.write = ((chunk: string | Uint8Array) => {
      captured.push(String(chunk))
      return true
    }) as typeof process.stderr.write
    try {
      await rs.stop()
      // Sessions go on while nobody reads the socket.
      await session(srv)
      await rs.start()
      const deadline = Date.now() + 30_000
      let arrived = false
      while (!arrived && Date.now() < deadline) {
        const id = await session(srv)
        arrived = (await rs.received()).some((l) => l.includes(`accepted id=${id} `))
        if (!arrived) await new Promise((r) => setTimeout(r, 250))
      }
      assert.ok(arrived, 'no entry reached the restarted rsyslog')
    } finally {
      process.stderr.write = original
      await srv.close()
    }
    assert.match(captured.join(''), /logging\/syslog: \/usr\/bin\/logger exited \(1\) writing to \S+: .*; retrying/)
  })
})

describe('logging/syslog, receiver down', () => {
  it('TCP: sessions do not wait; a bounded queue is kept and sent on reconnection, then a dropped count', async () => {
    const probeReceiver = await tcpReceiver()
    const port = probeReceiver.port
    await probeReceiver.close()
    const captured: string[] = []
    const original = process.stderr.write.bind(process.stderr)
    process.stderr.write = ((chunk: string | Uint8Array) => {
      captured.push(String(chunk))
      return true
    }) as typeof process.stderr.write
    let srv: TestServer | undefined
    let rx: Awaited<ReturnType<typeof tcpReceiver>> | undefined
    try {
      srv = await startTestServer({
        plugins: [
          probe(),
          acceptRcpt(),
          logSyslog({ logsock: 'tcp', server: `127.0.0.1:${port}`, loglevel: 'LOGNOTICE', queue: 250 }),
        ],
      })
      // Three sessions, two entries of about 100 bytes each: 250 bytes keep the first two.
      for (let i = 0; i < 3; i++) await session(srv)
      rx = await tcpReceiver(port)
      const receiver = rx
      await until(() => receiver.bytes().includes('log entries dropped'), 'the dropped notice', 15_000)
    } finally {
      process.stderr.write = original
      await srv?.close()
      await rx?.close()
    }
    const messages = octetFrames(rx.bytes())
    assert.deepEqual(
      messages.map((m) => m.replace(/^<(\d+)>1 \S+ mx\.test qtsmtpd \d+ - - (?:\S+ \(connect\) )?/, '<$1> ')),
      [
        '<21> test/probe: probe 5 é',
        '<20> test/probe: probe 4',
        '<20> logging/syslog: 4 log entries dropped (syslog receiver unreachable or slow)',
      ],
    )
    assert.match(
      captured.join(''),
      new RegExp(
        `logging/syslog: cannot send to 127\\.0\\.0\\.1:${port} over TCP: connect ECONNREFUSED .*; retrying, dropping messages past 250 bytes\\n`,
      ),
    )
  })
})
