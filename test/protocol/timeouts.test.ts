/**
 * Timeouts (security.md §1.8), with short settings so each test takes under 5 s: idle after the
 * greeting, a per-request deadline that a byte-at-a-time client cannot extend, the minimum data
 * rate, the session deadline, and a STARTTLS handshake that never happens.
 */
import assert from 'node:assert/strict'
import { connect as netConnect } from 'node:net'
import { test } from 'node:test'
import {
  acceptAllRecipients,
  Replies,
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from '../../src/testing/index.ts'

const line = (r: { code: number; enhanced?: string | undefined; lines: readonly string[] }) =>
  `${r.code} ${r.enhanced === undefined ? '' : `${r.enhanced} `}${r.lines[0]}\r\n`

async function withServer(opts: TestServerOptions, fn: (srv: TestServer) => Promise<void>): Promise<void> {
  const srv = await startTestServer({ plugins: [acceptAllRecipients()], logLevel: 3, ...opts })
  try {
    await fn(srv)
  } finally {
    await srv.close()
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

test('idle after the greeting: 421 4.4.2 and close', async () => {
  await withServer({ timeouts: { commandMs: 500 } }, async (srv) => {
    const c = await srv.connect()
    const t0 = Date.now()
    await c.expect(220)
    await c.expect(line(Replies.timeout), 3000)
    await c.closed()
    const took = Date.now() - t0
    assert.ok(took >= 450 && took < 2500, `closed after ${took} ms`)
  })
})

test('one byte every 200 ms: closed at the per-request deadline, not extended by each byte', async () => {
  await withServer({ timeouts: { commandMs: 1000 } }, async (srv) => {
    const c = await srv.connect()
    await c.expect(220)
    const t0 = Date.now()
    const text = 'EHLO a-very-slow-client.test\r\n'
    for (let i = 0; i < text.length && !c.isClosed; i++) {
      c.write(text.charAt(i))
      await sleep(200)
    }
    await c.expect(line(Replies.timeout), 3000)
    await c.closed()
    const took = Date.now() - t0
    // 30 bytes at 200 ms would take 6 s; the deadline is 1 s for the whole line.
    assert.ok(took >= 900 && took < 2500, `closed after ${took} ms`)
  })
})

test('DATA below minDataRate: 421 4.4.2 and nothing queued', async () => {
  await withServer({ timeouts: { dataMs: 1000, minDataRate: 100 } }, async (srv) => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<a@remote.test>', 250)
    await c.send('RCPT TO:<u@local.test>', 250)
    await c.send('DATA', 354)
    const t0 = Date.now()
    // 10 bytes every 200 ms = 50 B/s, half the minimum rate.
    for (let i = 0; i < 25 && !c.isClosed; i++) {
      c.write('xxxxxxxxx\n'.replace('\n', '\r\n').slice(0, 10))
      await sleep(200)
    }
    await c.expect(line(Replies.tooSlow), 3000)
    await c.closed()
    assert.ok(Date.now() - t0 < 4500)
    assert.equal(srv.queued.length, 0)
  })
})

test('a burst of content then a stall: closed dataMs after the last octet, the rate credit is capped', async () => {
  // 1 MB at a minimum rate of 1 B/s would buy days of credit without the cap.
  await withServer({ timeouts: { dataMs: 600, minDataRate: 1 } }, async (srv) => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<a@remote.test>', 250)
    await c.send('RCPT TO:<u@local.test>', 250)
    await c.send('DATA', 354)
    c.write(`Subject: burst\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(1000))
    const t0 = Date.now()
    await c.expect(line(Replies.tooSlow), 5000)
    await c.closed()
    const took = Date.now() - t0
    assert.ok(took < 3000, `closed after ${took} ms`)
    assert.equal(srv.queued.length, 0)
  })
})

test('the session deadline ends even a busy session', async () => {
  await withServer({ timeouts: { sessionMs: 1000 } }, async (srv) => {
    const c = await srv.connect()
    await c.expect(220)
    const t0 = Date.now()
    while (!c.isClosed && Date.now() - t0 < 3000) {
      c.write('NOOP\r\n')
      const r = await c.reply(2000)
      if (r.code !== 250) {
        assert.equal(r.raw, line(Replies.sessionTimeout))
        break
      }
      await sleep(100)
    }
    await c.closed()
    const took = Date.now() - t0
    assert.ok(took >= 800 && took < 2500, `closed after ${took} ms`)
  })
})

test('STARTTLS and then no handshake: the connection is closed at tlsHandshakeMs', async () => {
  await withServer({ tls: true, timeouts: { tlsHandshakeMs: 500 } }, async (srv) => {
    const sock = netConnect({ port: srv.port, host: '127.0.0.1' })
    try {
      let text = ''
      sock.on('data', (b) => {
        text += b.toString('latin1')
      })
      const closed = new Promise<number>((r) => sock.once('close', () => r(Date.now())))
      await sleep(100)
      sock.write('EHLO client.test\r\n')
      await sleep(100)
      sock.write('STARTTLS\r\n')
      await sleep(100)
      assert.match(text, /\r\n220 2\.0\.0 Ready to start TLS\r\n$/)
      const t0 = Date.now()
      const at = await Promise.race([closed, sleep(3000).then(() => 0)])
      assert.ok(at > 0, 'the server did not close the connection')
      assert.ok(at - t0 >= 300 && at - t0 < 2000, `closed after ${at - t0} ms`)
      assert.equal(srv.queued.length, 0)
    } finally {
      sock.destroy()
    }
  })
})
