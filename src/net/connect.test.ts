import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { createServer as createTlsServer } from 'node:tls'
import { makeCertificate } from '../testing/certs.ts'
import { connect, NetError, parseTarget } from './connect.ts'

async function listen(server: Server, where: { port: number; host: string } | string): Promise<number> {
  server.listen(where)
  await once(server, 'listening')
  const a = server.address()
  return typeof a === 'object' && a !== null ? a.port : 0
}

/** A TCP server that accepts and never says anything; sockets it saw, for checks. */
async function silentServer(): Promise<{ port: number; sockets: Socket[]; close: () => Promise<void> }> {
  const sockets: Socket[] = []
  const server = createServer((s) => {
    sockets.push(s)
    s.on('error', () => {})
    s.resume() // reads, so that it sees the client's FIN
  })
  const port = await listen(server, { port: 0, host: '127.0.0.1' })
  return {
    port,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }
}

describe('connect', () => {
  it('connects over TCP and the socket carries data', async () => {
    const server = createServer((s) => s.end('hello\n'))
    const port = await listen(server, { port: 0, host: '127.0.0.1' })
    try {
      const socket = await connect({ host: '127.0.0.1', port }, { timeoutMs: 5_000 })
      const [data] = await once(socket, 'data')
      assert.equal(String(data), 'hello\n')
      socket.destroy()
    } finally {
      server.close()
    }
  })

  it('connects to a Unix socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-net-'))
    const path = join(dir, 'service.sock')
    const server = createServer((s) => s.end('unix\n'))
    await listen(server, path)
    try {
      const socket = await connect({ path }, { timeoutMs: 5_000 })
      const [data] = await once(socket, 'data')
      assert.equal(String(data), 'unix\n')
      socket.destroy()
    } finally {
      server.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('names the target and the system error when the connection is refused', async () => {
    const server = createServer()
    const port = await listen(server, { port: 0, host: '127.0.0.1' })
    server.close()
    await once(server, 'close')
    await assert.rejects(connect({ host: '127.0.0.1', port }, { timeoutMs: 5_000 }), (e) => {
      assert.ok(e instanceof NetError)
      assert.equal(e.code, 'ECONNREFUSED')
      assert.match(e.message, new RegExp(`^connect to 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`))
      return true
    })
  })

  it('gives up at the deadline, TLS handshake included, and closes the socket', async () => {
    const silent = await silentServer()
    try {
      await assert.rejects(
        connect({ host: '127.0.0.1', port: silent.port }, { timeoutMs: 100, tls: {} }),
        (e) =>
          e instanceof NetError &&
          e.code === 'ETIMEDOUT' &&
          e.message === `connect to 127.0.0.1:${silent.port}: no connection within 100 ms`,
      )
      const [theirs] = silent.sockets
      assert.ok(theirs !== undefined)
      if (!theirs.closed) await once(theirs, 'close')
    } finally {
      await silent.close()
    }
  })

  it('rejects with the reason when the signal aborts, and does not start when it already has', async () => {
    const silent = await silentServer()
    try {
      const ac = new AbortController()
      const connecting = connect(
        { host: '127.0.0.1', port: silent.port },
        { timeoutMs: 60_000, signal: ac.signal, tls: {} },
      )
      while (silent.sockets.length === 0) await new Promise((r) => setTimeout(r, 5))
      const gone = new Error('client gone')
      ac.abort(gone)
      await assert.rejects(connecting, (e) => e === gone)
      await assert.rejects(
        connect({ host: '127.0.0.1', port: silent.port }, { timeoutMs: 60_000, signal: ac.signal }),
        (e) => e === gone,
      )
    } finally {
      await silent.close()
    }
  })

  describe('with TLS', async () => {
    const cert = await makeCertificate('localhost')
    const server = createTlsServer({ cert: cert.cert, key: cert.key }, (s) => s.end('secret\n'))
    const port = await listen(server, { port: 0, host: '127.0.0.1' })
    after(async () => {
      server.close()
      await rm(cert.dir, { recursive: true, force: true })
    })

    it('verifies the certificate against the CA given and the server name', async () => {
      const socket = await connect(
        { host: '127.0.0.1', port },
        { timeoutMs: 5_000, tls: { ca: cert.cert, servername: 'localhost' } },
      )
      const [data] = await once(socket, 'data')
      assert.equal(String(data), 'secret\n')
      socket.destroy()
    })

    it('refuses a certificate it cannot verify', async () => {
      await assert.rejects(
        connect({ host: '127.0.0.1', port }, { timeoutMs: 5_000, tls: { servername: 'localhost' } }),
        (e) => e instanceof NetError && /self-signed certificate/.test(e.message),
      )
    })
  })
})

describe('parseTarget', () => {
  const cases = [
    { spec: '/run/clamav/clamd.ctl', want: { path: '/run/clamav/clamd.ctl' } },
    { spec: 'localhost:783', want: { host: 'localhost', port: 783 } },
    { spec: '127.0.0.1', want: { host: '127.0.0.1', port: 3310 } },
    { spec: '[::1]:11333', want: { host: '::1', port: 11333 } },
    { spec: 'spamd.example:0', want: undefined },
    { spec: 'a b:783', want: undefined },
    { spec: '::1:783', want: undefined },
  ] as const
  for (const c of cases)
    it(c.spec, () => {
      if (c.want === undefined) assert.throws(() => parseTarget(c.spec, 3310), /expected a socket path/)
      else assert.deepEqual(parseTarget(c.spec, 3310), c.want)
    })
})
