/**
 * TLS renegotiation (RFC 5746 §5, issue 18 F7): a client may not renegotiate, after STARTTLS
 * or on an smtps listener. Each renegotiation is a full handshake of server CPU (a client did
 * 101 on one connection); the server answers the client's new ClientHello with a
 * no_renegotiation alert instead. TLS 1.3 has no renegotiation, so the clients use TLS 1.2.
 */
import assert from 'node:assert/strict'
import { connect as netConnect, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { type TLSSocket, connect as tlsConnect } from 'node:tls'
import { startTestServer, type TestServer } from '../../src/testing/index.ts'

const tls12 = { rejectUnauthorized: false, servername: 'localhost', maxVersion: 'TLSv1.2' } as const

/** Resolves with the next full line the socket sends. */
function nextLine(sock: Socket | TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const on = (b: Buffer) => {
      text += b.toString('latin1')
      if (!text.endsWith('\r\n') || /^\d{3}-/m.test(text.split('\r\n').at(-2) ?? '')) return
      sock.off('data', on)
      resolve(text)
    }
    sock.on('data', on)
    sock.once('close', () => reject(new Error(`closed after ${JSON.stringify(text)}`)))
  })
}

/** Asks to renegotiate; resolves with the error the client got, or 'renegotiated'. */
function renegotiate(secure: TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    secure.once('error', (e) => resolve(e.message))
    const asked = secure.renegotiate({ rejectUnauthorized: false }, (e) => resolve(e?.message ?? 'renegotiated'))
    if (!asked) resolve('renegotiate() refused by the client')
  })
}

describe('TLS renegotiation', { timeout: 30_000 }, () => {
  let srv: TestServer
  before(async () => {
    srv = await startTestServer({ tls: true })
  })
  after(() => srv.close())

  test('smtps: a client asking to renegotiate gets a no_renegotiation alert', async () => {
    const secure = tlsConnect({ port: srv.smtpsPort as number, host: '127.0.0.1', ...tls12 })
    const greeting = nextLine(secure)
    await new Promise((r) => secure.once('secureConnect', r))
    assert.equal(secure.getProtocol(), 'TLSv1.2')
    assert.match(await greeting, /^220 /)
    assert.match(await renegotiate(secure), /no renegotiation/)
    secure.destroy()
  })

  test('STARTTLS: a client asking to renegotiate gets a no_renegotiation alert', async () => {
    const plain = await new Promise<Socket>((resolve, reject) => {
      const s = netConnect({ port: srv.port, host: '127.0.0.1' }, () => resolve(s))
      s.once('error', reject)
    })
    assert.match(await nextLine(plain), /^220 /)
    plain.write('EHLO client.test\r\n')
    assert.match(await nextLine(plain), /^250 /m)
    plain.write('STARTTLS\r\n')
    assert.match(await nextLine(plain), /^220 /)
    const secure = tlsConnect({ socket: plain, ...tls12 })
    await new Promise((r) => secure.once('secureConnect', r))
    assert.equal(secure.getProtocol(), 'TLSv1.2')
    assert.match(await renegotiate(secure), /no renegotiation/)
    secure.destroy()
  })

  test('a client that does not renegotiate is served as before', async () => {
    const c = await srv.connect({ tls: true })
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('QUIT', 221)
  })
})
