/**
 * Refused connections (security.md §1.9) give their descriptors back: a connection over
 * --max-connections or --max-connections-per-ip gets its 421 and is closed for certain,
 * whether the client closes after the reply or stays silent (issue 18 F2: 300 refused
 * clients used to hold 300 descriptors for good). Descriptors are counted in /proc/self/fd,
 * the server under test runs in this process; this file runs alone so the count is exact.
 */
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { after, describe, test } from 'node:test'
import { startTestServer, type TestServer } from '../../src/testing/index.ts'
import { type RawConnection, rawConnect } from './raw-connect.ts'

const tooManyFromYou = '421 4.7.0 Too many connections from your address, try again later\r\n'
const tooMany = '421 4.3.2 Too many connections, try again later\r\n'

/** Open descriptors of this process (the server under test runs in it). */
const openFds = (): number => readdirSync('/proc/self/fd').length

/** Polls until the descriptor count is at most `want`; returns the last count. */
async function fdsSettleAt(want: number, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  let n = openFds()
  while (n > want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50))
    n = openFds()
  }
  return n
}

/** A client that reads the refusal and then neither closes nor sends anything. */
async function silentClient(port: number, localAddress: string): Promise<{ socket: Socket; reply: Promise<string> }> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress, allowHalfOpen: true }, () => resolve(s))
    s.once('error', reject)
  })
  socket.on('error', () => {})
  socket.setEncoding('utf8')
  let data = ''
  const reply = new Promise<string>((r) => {
    socket.on('data', (d: string) => {
      data += d
    })
    socket.once('end', () => r(data))
  })
  return { socket, reply }
}

describe('refused connections', { timeout: 30_000 }, () => {
  const open: RawConnection[] = []
  const servers: TestServer[] = []
  after(async () => {
    for (const c of open) c.socket.destroy()
    for (const s of servers) await s.close()
  })

  test('refused connections give their descriptors back (client closes after the 421)', async () => {
    const srv = await startTestServer({ serverLimits: { maxConnections: 2, maxConnectionsPerIp: 1 } })
    servers.push(srv)
    const kept: RawConnection[] = []
    for (const ip of ['127.0.0.20', '127.0.0.21']) {
      const c = await rawConnect(srv.port, '127.0.0.1', ip)
      kept.push(c)
      open.push(c)
      assert.match(await c.firstLine, /^220 /)
    }
    const baseline = openFds()
    // Over the total limit, and over the per-address limit (a third address, one slot taken).
    for (let i = 0; i < 30; i++) {
      const c = await rawConnect(srv.port, '127.0.0.1', `127.0.1.${i + 1}`)
      assert.equal(await c.closed, tooMany, `connection ${i + 1}`)
    }
    kept[1]?.socket.destroy()
    for (let i = 0; i < 100 && srv.server.connectionCount > 1; i++) await new Promise((r) => setTimeout(r, 20))
    const perIp = await rawConnect(srv.port, '127.0.0.1', '127.0.0.20')
    assert.equal(await perIp.closed, tooManyFromYou)
    // The client's socket is gone, and so must the server's be: two fewer than before (the session closed above).
    assert.equal(await fdsSettleAt(baseline - 2), baseline - 2)
  })

  test('a refused client that never closes is closed anyway', async () => {
    const srv = await startTestServer({ serverLimits: { maxConnections: 1, refusalLingerMs: 200 } })
    servers.push(srv)
    const first = await rawConnect(srv.port, '127.0.0.1', '127.0.0.30')
    open.push(first)
    assert.match(await first.firstLine, /^220 /)
    const baseline = openFds()
    const silent: Socket[] = []
    for (let i = 0; i < 10; i++) {
      const c = await silentClient(srv.port, `127.0.2.${i + 1}`)
      silent.push(c.socket)
      assert.equal(await c.reply, tooMany)
    }
    try {
      // The clients' 10 descriptors stay open; the server's 10 must not.
      assert.equal(await fdsSettleAt(baseline + 10), baseline + 10)
    } finally {
      for (const s of silent) s.destroy()
    }
  })
})
