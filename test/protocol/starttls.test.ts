/**
 * STARTTLS (RFC 3207; security.md §1.2, CVE-2011-0411, "NO STARTTLS"): plaintext pipelined behind
 * STARTTLS is discarded, state is forgotten after the handshake, bad uses are refused, tlsRequired
 * gates MAIL, and implicit TLS (RFC 8314) works end to end.
 */
import assert from 'node:assert/strict'
import { connect as netConnect, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { type TLSSocket, connect as tlsConnect } from 'node:tls'
import { acceptAllRecipients, Replies, startTestServer, type TestServer } from '../../src/testing/index.ts'

const line = (r: { code: number; enhanced?: string | undefined; lines: readonly string[] }) =>
  `${r.code} ${r.enhanced === undefined ? '' : `${r.enhanced} `}${r.lines[0]}\r\n`

/** Reads everything a socket sends until `until` matches the collected text or ms pass. */
function collect(sock: Socket | TLSSocket, until: RegExp, ms = 3000): Promise<string> {
  return new Promise((resolve) => {
    let text = ''
    const done = () => {
      clearTimeout(t)
      sock.off('data', on)
      resolve(text)
    }
    const on = (b: Buffer) => {
      text += b.toString('latin1')
      if (until.test(text)) done()
    }
    const t = setTimeout(done, ms)
    sock.on('data', on)
  })
}

describe('STARTTLS', () => {
  let srv: TestServer
  let lax: TestServer
  before(async () => {
    srv = await startTestServer({ plugins: [acceptAllRecipients()], tls: true, logLevel: 3 })
    lax = await startTestServer({
      plugins: [acceptAllRecipients()],
      tls: true,
      policies: { enforceSync: false },
      logLevel: 3,
    })
  })
  after(async () => {
    await srv.close()
    await lax.close()
  })

  test('STARTTLS\\r\\nRSET\\r\\n in one write (enforceSync): 554 5.5.0 and close, no TLS', async () => {
    const plain = netConnect({ port: srv.port, host: '127.0.0.1' })
    try {
      await collect(plain, /^220 .*\r\n/m)
      plain.write('EHLO client.test\r\n')
      await collect(plain, /^250 STARTTLS\r\n/m)
      const closed = new Promise((r) => plain.once('close', r))
      plain.write('STARTTLS\r\nRSET\r\n')
      assert.equal(await collect(plain, /\r\n/), line(Replies.syncError))
      await closed
    } finally {
      plain.destroy()
    }
  })

  for (const probe of ['RSET', 'EHLO commandinjectiontester']) {
    test(`STARTTLS\\r\\n${probe}\\r\\n without enforceSync: the plaintext is dropped, no reply inside TLS`, async () => {
      const plain = netConnect({ port: lax.port, host: '127.0.0.1' })
      let secure: TLSSocket | undefined
      try {
        await collect(plain, /^220 .*\r\n/m)
        plain.write('EHLO client.test\r\n')
        await collect(plain, /^250 STARTTLS\r\n/m)
        plain.write(`STARTTLS\r\n${probe}\r\n`)
        assert.equal(await collect(plain, /^220 .*\r\n/m), line(Replies.startTls))
        secure = await new Promise<TLSSocket>((resolve, reject) => {
          const s = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(s))
          s.once('error', reject)
        })
        // Nothing may arrive unasked: a 250 here would be the injected command's reply.
        assert.equal(await collect(secure, /./, 300), '')
        secure.write('EHLO again.test\r\n')
        const ehlo = await collect(secure, /^250 .*\r\n/m)
        assert.match(ehlo, /^250-mx\.test Hello again\.test/)
        assert.doesNotMatch(ehlo, /STARTTLS/)
        secure.write('QUIT\r\n')
        assert.match(await collect(secure, /^221 /m), /^221 2\.0\.0 /)
      } finally {
        secure?.destroy()
        plain.destroy()
      }
    })
  }

  test('state is forgotten after TLS: MAIL before the new EHLO gets 503', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.startTls()
    await c.send('MAIL FROM:<a@remote.test>', line(Replies.needHelo))
    await c.send('EHLO client.test', /^250-mx\.test Hello client\.test/)
    await c.send('MAIL FROM:<a@remote.test>', line(Replies.senderOk))
    await c.quit()
  })

  test('STARTTLS with an argument gets 501; STARTTLS inside TLS gets 503; inside a transaction 503', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('STARTTLS foo', line(Replies.noParams))
    await c.send('MAIL FROM:<a@remote.test>', 250)
    await c.send('STARTTLS', line(Replies.badSequence))
    await c.send('RSET', 250)
    await c.startTls()
    await c.send('EHLO client.test', 250)
    await c.send('STARTTLS', line(Replies.tlsAlready))
    await c.quit()
    assert.equal(srv.queued.length, 0)
  })

  test('implicit TLS works end to end and Received says ESMTPS with the TLS version', async () => {
    const before = srv.queued.length
    const c = await srv.connect({ tls: true })
    await c.expect(220)
    await c.send('EHLO client.test', /^250-mx\.test Hello/)
    await c.send('MAIL FROM:<a@remote.test>', line(Replies.senderOk))
    await c.send('RCPT TO:<u@local.test>', line(Replies.recipientOk))
    await c.send('DATA', line(Replies.startData))
    await c.send('Subject: tls\r\n\r\nhello\r\n.', /^250 2\.0\.0 Queued as /)
    await c.quit()
    assert.equal(srv.queued.length - before, 1)
    const text = srv.queued.at(-1)?.text ?? ''
    assert.match(text, /with ESMTPS id \w+\r\n\t\(version=TLSv1\.[23] cipher=[\w-]+\)/)
    assert.match(text, /\r\nSubject: tls\r\n\r\nhello\r\n$/)
  })
})

describe('STARTTLS required', () => {
  let srv: TestServer
  before(async () => {
    srv = await startTestServer({
      plugins: [acceptAllRecipients()],
      tls: true,
      policies: { tlsRequired: true },
      logLevel: 3,
    })
  })
  after(() => srv.close())

  test('MAIL before STARTTLS gets 530 5.7.0; EHLO/NOOP/RSET are allowed', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('NOOP', 250)
    await c.send('RSET', 250)
    await c.send('MAIL FROM:<a@remote.test>', line(Replies.tlsFirst))
    await c.send('VRFY u@local.test', line(Replies.tlsFirst))
    await c.startTls()
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<a@remote.test>', line(Replies.senderOk))
    await c.send('RCPT TO:<u@local.test>', line(Replies.recipientOk))
    await c.send('DATA', 354)
    await c.send('.', /^250 2\.0\.0 Queued as /)
    await c.quit()
    assert.equal(srv.queued.length, 1)
  })
})

describe('clients that vanish around the TLS handshake', () => {
  let srv: TestServer
  before(async () => {
    srv = await startTestServer({ plugins: [acceptAllRecipients()], tls: true, logLevel: 3 })
  })
  after(() => srv.close())

  const sessionsGone = async () => {
    const deadline = Date.now() + 3000
    while (srv.server.connectionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    return srv.server.connectionCount
  }

  test('gone right after the 220 to STARTTLS: the session ends at once, not at the handshake timeout', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('STARTTLS', 220)
    c.destroy()
    assert.equal(await sessionsGone(), 0)
  })

  test('gone right after the handshake, before any command: the session ends at once', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.startTls()
    c.destroy()
    assert.equal(await sessionsGone(), 0)
  })
})
