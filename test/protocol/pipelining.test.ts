/**
 * Pipelining (RFC 2920; security.md §1.3): legitimate groups get their replies in order, a huge
 * group does not deadlock, groups that break the rules get 554 5.5.0 and a close, and a client
 * that never reads cannot make the server buffer without bound (the session's own bound is tested
 * in src/session/session.test.ts, without the kernel's socket buffers in between).
 */
import assert from 'node:assert/strict'
import { connect as netConnect } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { acceptAllRecipients, Replies, startTestServer, type TestServer } from '../../src/testing/index.ts'

const line = (r: { code: number; enhanced?: string | undefined; lines: readonly string[] }) =>
  `${r.code} ${r.enhanced === undefined ? '' : `${r.enhanced} `}${r.lines[0]}\r\n`

describe('pipelining', () => {
  let srv: TestServer
  before(async () => {
    srv = await startTestServer({ plugins: [acceptAllRecipients()], limits: { recipients: 6000 }, logLevel: 3 })
  })
  after(() => srv.close())

  test('MAIL, RCPT x3 (one refused), DATA in one write: replies in order', async () => {
    const before = srv.queued.length
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    c.write('MAIL FROM:<a@remote.test>\r\nRCPT TO:<u1@local.test>\r\nRCPT TO:<>\r\nRCPT TO:<u2@local.test>\r\nDATA\r\n')
    await c.expect(line(Replies.senderOk))
    await c.expect(line(Replies.recipientOk))
    await c.expect(/^501 5\.1\.3 /)
    await c.expect(line(Replies.recipientOk))
    await c.expect(line(Replies.startData))
    await c.send('Subject: p\r\n\r\nx\r\n.', /^250 2\.0\.0 Queued as /)
    await c.quit()
    assert.equal(srv.queued.length - before, 1)
    assert.deepEqual(
      srv.queued.at(-1)?.to.map((a) => a.replace(/^<|>$/g, '')),
      ['u1@local.test', 'u2@local.test'],
    )
  })

  test('a group whose recipients all fail: DATA gets 554 5.5.1', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    c.write('MAIL FROM:<a@remote.test>\r\nRCPT TO:<>\r\nDATA\r\n')
    await c.expect(line(Replies.senderOk))
    await c.expect(/^501 5\.1\.3 /)
    await c.expect(line(Replies.noValidRecipients))
    await c.quit()
  })

  test('5,000 pipelined RCPTs do not deadlock', async () => {
    const before = srv.queued.length
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    const n = 5000
    let group = 'MAIL FROM:<a@remote.test>\r\n'
    for (let i = 0; i < n; i++) group += `RCPT TO:<user${i}@local.test>\r\n`
    c.write(`${group}DATA\r\n`)
    await c.expect(line(Replies.senderOk), 10_000)
    for (let i = 0; i < n; i++) await c.expect(line(Replies.recipientOk), 10_000)
    await c.expect(line(Replies.startData), 10_000)
    await c.send('Subject: many\r\n\r\nx\r\n.', /^250 2\.0\.0 Queued as /, 10_000)
    await c.quit()
    assert.equal(srv.queued.length - before, 1)
    assert.equal(srv.queued.at(-1)?.to.length, n)
  })

  test('EHLO x\\r\\nMAIL FROM in one write: 554 5.5.0 and close', async () => {
    const c = await srv.connect()
    await c.expect(220)
    c.write('EHLO x\r\nMAIL FROM:<a@t.test>\r\n')
    await c.expect(line(Replies.syncError))
    await c.closed()
    assert.deepEqual(c.pending(), [])
  })

  test('a HELO client that pipelines gets 554 5.5.0', async () => {
    const before = srv.queued.length
    const c = await srv.connect()
    await c.expect(220)
    await c.send('HELO client.test', 250)
    c.write('MAIL FROM:<a@remote.test>\r\nRCPT TO:<u@local.test>\r\n')
    await c.expect(line(Replies.syncError))
    await c.closed()
    assert.deepEqual(c.pending(), [])
    assert.equal(srv.queued.length, before)
  })
})

describe('a client that never reads', () => {
  let srv: TestServer
  before(async () => {
    srv = await startTestServer({
      plugins: [acceptAllRecipients()],
      limits: { junkCommands: 1_000_000, commandsPerSession: 1_000_000 },
      timeouts: { commandMs: 1000 },
      // Without sync enforcement the NOOPs are all answered, so the replies pile up unread.
      policies: { enforceSync: false },
      logLevel: 3,
    })
  })
  after(() => srv.close())

  test('NOOPs written without reading: the server stops reading and closes', async () => {
    const sock = netConnect({ port: srv.port, host: '127.0.0.1' })
    await new Promise((r) => sock.once('connect', r))
    sock.pause() // never read
    let closed = false
    sock.on('close', () => {
      closed = true
    })
    sock.on('error', () => {})
    const chunk = Buffer.from('NOOP\r\n'.repeat(10_000))
    let written = 0
    // The client honours back-pressure: once the server stops reading, its writes stall until the
    // server gives up on it (command_timeout) and closes. Bounded: at most 32 MB offered, several
    // times what loopback socket buffers take.
    while (!closed && written < 32_000_000) {
      written += chunk.length
      if (!sock.write(chunk)) await drainedOrClosed(sock)
    }
    assert.ok(written < 32_000_000, `the server kept taking bytes from a non-reader (${written})`)
    await new Promise<void>((r) => (closed ? r() : sock.once('close', () => r())))
    const read = srv.metrics.value('qtsmtpd_received_bytes_total', { listener: `smtp:${srv.port}` }) ?? 0
    // What the server read is what the loopback socket buffers took of its replies (a few MB);
    // what it holds in memory meanwhile is bounded in src/session/session.test.ts.
    assert.ok(read > 0 && read < 16_000_000, `the server read ${read} of ${written} bytes offered by a non-reader`)
  })
})

/** Waits for 'drain' or 'close', without leaving a listener behind. */
function drainedOrClosed(sock: import('node:net').Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      sock.off('drain', done)
      sock.off('close', done)
      resolve()
    }
    sock.once('drain', done)
    sock.once('close', done)
  })
}
