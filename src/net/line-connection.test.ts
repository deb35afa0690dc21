import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import { NetError } from './connect.ts'
import type { LineConnection, LineConnectionOptions } from './line-connection.ts'
import { systemNet } from './service.ts'

/** A peer on loopback driven by the test: `onLine` answers each line the client sends. */
async function peer(onConnect: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => {})
    onConnect(s)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as { port: number }).port }
}

async function client(port: number, opts: LineConnectionOptions = {}): Promise<LineConnection> {
  return systemNet.connectLines({ host: '127.0.0.1', port }, { timeoutMs: 5_000, ...opts })
}

const read = { timeoutMs: 5_000 }

describe('LineConnection', () => {
  it('sends lines with CRLF and reads answers, whatever the segmentation', async () => {
    const got: string[] = []
    const { server, port } = await peer((s) => {
      s.setEncoding('latin1')
      s.on('data', (d: string) => {
        got.push(d)
        if (d.includes('PING')) {
          // An answer cut inside its CRLF, and two lines in one segment.
          s.write('PO')
          setTimeout(() => s.write('NG\r'), 5)
          setTimeout(() => s.write('\nsecond\nthird\r\n'), 10)
        }
      })
    })
    try {
      const c = await client(port)
      assert.equal(await c.request('PING', read), 'PONG')
      assert.equal(await c.readLine(read), 'second')
      assert.equal(await c.readLine(read), 'third')
      assert.equal(got.join(''), 'PING\r\n')
      await c.close()
    } finally {
      server.close()
    }
  })

  it('refuses to send a line with CR or LF in it', async () => {
    const { server, port } = await peer(() => {})
    try {
      const c = await client(port)
      await assert.rejects(c.send('a\r\nQUIT'), (e) => e instanceof NetError && e.code === 'EINVAL')
      c.destroy()
    } finally {
      server.close()
    }
  })

  it('times out a read and destroys the connection, so a late answer is never taken for the next', async () => {
    let theirs: Socket | undefined
    const { server, port } = await peer((s) => {
      theirs = s
      s.resume()
    })
    try {
      const c = await client(port)
      await assert.rejects(
        c.readLine({ timeoutMs: 50 }),
        (e) => e instanceof NetError && e.code === 'ETIMEDOUT' && / within 50 ms$/.test(e.message),
      )
      assert.equal(c.isOpen, false)
      theirs?.write('late\r\n')
      await assert.rejects(c.readLine(read), (e) => e instanceof NetError && e.code === 'ETIMEDOUT')
    } finally {
      server.close()
    }
  })

  it('rejects a read with the reason when the signal aborts', async () => {
    const { server, port } = await peer((s) => s.resume())
    try {
      const c = await client(port)
      const ac = new AbortController()
      const reading = c.readLine({ timeoutMs: 60_000, signal: ac.signal })
      const gone = new Error('client gone')
      ac.abort(gone)
      await assert.rejects(reading, (e) => e === gone)
      assert.equal(c.isOpen, false)
    } finally {
      server.close()
    }
  })

  it('ends the connection on a line longer than the limit, also one arriving byte by byte', async () => {
    for (const chunks of [['x'.repeat(11) + '\n'], Array.from({ length: 12 }, () => 'y')]) {
      const { server, port } = await peer((s) => {
        for (const c of chunks) s.write(c)
      })
      try {
        const c = await client(port, { maxLineLength: 10 })
        await assert.rejects(
          c.readLine(read),
          (e) => e instanceof NetError && e.code === 'ELINETOOLONG' && /longer than 10 bytes/.test(e.message),
        )
      } finally {
        server.close()
      }
    }
  })

  it('takes a line exactly at the limit, with or without CR', async () => {
    const { server, port } = await peer((s) => s.write(`${'a'.repeat(10)}\r\n${'b'.repeat(10)}\n`))
    try {
      const c = await client(port, { maxLineLength: 10 })
      assert.equal(await c.readLine(read), 'a'.repeat(10))
      assert.equal(await c.readLine(read), 'b'.repeat(10))
      c.destroy()
    } finally {
      server.close()
    }
  })

  it('gives the lines that arrived before the peer closed, then says it closed', async () => {
    const { server, port } = await peer((s) => s.end('last words\n'))
    try {
      const c = await client(port)
      assert.equal(await c.readLine(read), 'last words')
      await assert.rejects(c.readLine(read), (e) => e instanceof NetError && /closed the connection/.test(e.message))
    } finally {
      server.close()
    }
  })

  it('stops reading from the socket while too many lines wait unread', async () => {
    const { server, port } = await peer((s) => s.write('1\n2\n3\n4\n5\n'))
    try {
      const c = await client(port, { maxQueuedLines: 2 })
      while (!c.socket.isPaused()) await new Promise((r) => setTimeout(r, 5))
      for (const n of ['1', '2', '3', '4', '5']) assert.equal(await c.readLine(read), n)
      assert.equal(c.socket.isPaused(), false)
      c.destroy()
    } finally {
      server.close()
    }
  })
})
