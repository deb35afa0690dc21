/**
 * Timeouts (security.md §1.8), with short settings so each test takes under 5 s: idle after the
 * greeting, a per-request deadline that a byte-at-a-time client cannot extend, the minimum data
 * rate, the session deadline, and a STARTTLS handshake that never happens.
 * Each test checks that its timer fired (the reply it sends, a close before the client was done)
 * and that it did not fire early (a lower bound); never an upper time bound, which a loaded
 * machine breaks. The waits for a reply are generous hang detectors.
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
    await c.expect(line(Replies.timeout), 10_000)
    await c.closed()
    const took = Date.now() - t0
    assert.ok(took >= 450, `closed after ${took} ms`)
  })
})

test('one byte every 200 ms: closed at the per-request deadline, not extended by each byte', async () => {
  await withServer({ timeouts: { commandMs: 1000 } }, async (srv) => {
    const c = await srv.connect()
    await c.expect(220)
    const t0 = Date.now()
    const text = 'EHLO a-very-slow-client.test\r\n'
    let sent = 0
    for (; sent < text.length && !c.isClosed; sent++) {
      c.write(text.charAt(sent))
      await sleep(200)
    }
    await c.expect(line(Replies.timeout), 10_000)
    await c.closed()
    const took = Date.now() - t0
    // 30 bytes at 200 ms take 6 s; the deadline is 1 s for the whole line, so the line never ended.
    assert.ok(sent < text.length, `the whole line was sent (${sent} bytes)`)
    assert.ok(took >= 900, `closed after ${took} ms`)
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
    // 10 bytes every 200 ms = 50 B/s, half the minimum rate: closed before the 25th write.
    let writes = 0
    for (; writes < 25 && !c.isClosed; writes++) {
      c.write('xxxxxxxxx\n'.replace('\n', '\r\n').slice(0, 10))
      await sleep(200)
    }
    await c.expect(line(Replies.tooSlow), 10_000)
    await c.closed()
    assert.ok(writes < 25, 'the slow client was not cut off')
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
    // Without the cap the credit would last for days: any reply in the wait proves the cap.
    await c.expect(line(Replies.tooSlow), 10_000)
    await c.closed()
    assert.equal(srv.queued.length, 0)
  })
})

test('the session deadline ends even a busy session', async () => {
  await withServer({ timeouts: { sessionMs: 1000 } }, async (srv) => {
    const c = await srv.connect()
    await c.expect(220)
    const t0 = Date.now()
    // Busy all along: a NOOP every 100 ms, up to 100 of them (10 s), until the deadline's reply.
    let ended: string | undefined
    for (let i = 0; i < 100 && ended === undefined && !c.isClosed; i++) {
      c.write('NOOP\r\n')
      const r = await c.reply(10_000)
      if (r.code !== 250) ended = r.raw
      else await sleep(100)
    }
    // The deadline's reply may come between two NOOPs, unasked.
    ended ??= (await c.reply(10_000)).raw
    await c.closed()
    assert.equal(ended, line(Replies.sessionTimeout))
    const took = Date.now() - t0
    assert.ok(took >= 800, `closed after ${took} ms`)
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
      const at = await Promise.race([closed, sleep(10_000).then(() => 0)])
      assert.ok(at > 0, 'the server did not close the connection')
      assert.ok(at - t0 >= 300, `closed after ${at - t0} ms`)
      assert.equal(srv.queued.length, 0)
    } finally {
      sock.destroy()
    }
  })
})
