/**
 * Connection floods (security.md §1.9): per-address and total limits answer 421 and close,
 * never a silent stall. 60 sockets from 127.0.0.2 with 50 allowed: 51 to 60 get the reply.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { startTestServer, type TestServer } from '../../src/testing/index.ts'
import { type RawConnection, rawConnect } from './raw-connect.ts'

const tooManyFromYou = '421 4.7.0 Too many connections from your address, try again later\r\n'
const tooMany = '421 4.3.2 Too many connections, try again later\r\n'

describe('connection limits', { timeout: 30_000 }, () => {
  const open: RawConnection[] = []
  const servers: TestServer[] = []
  after(async () => {
    for (const c of open) c.socket.destroy()
    for (const s of servers) await s.close()
  })

  test('per address: 60 sockets from 127.0.0.2, the 51st to 60th get 421 4.7.0 and a close', async () => {
    const srv = await startTestServer({ serverLimits: { maxConnectionsPerIp: 50, maxConnections: 1000 } })
    servers.push(srv)
    const conns: RawConnection[] = []
    for (let i = 0; i < 60; i++) {
      const c = await rawConnect(srv.port, '127.0.0.1', '127.0.0.2')
      open.push(c)
      conns.push(c)
      // In order: wait for this one's first line, so the count is exact.
      const line = await c.firstLine
      if (i < 50) assert.match(line, /^220 /, `connection ${i + 1}`)
      else assert.equal(line, tooManyFromYou, `connection ${i + 1}`)
    }
    for (const c of conns.slice(50)) assert.equal(await c.closed, tooManyFromYou)
    assert.equal(srv.server.connectionsFrom('127.0.0.2'), 50)
    // Another address is not affected.
    const other = await rawConnect(srv.port, '127.0.0.1', '127.0.0.3')
    open.push(other)
    assert.match(await other.firstLine, /^220 /)
    // When one closes, its slot is free again.
    conns[0]?.socket.destroy()
    for (let i = 0; i < 50 && srv.server.connectionsFrom('127.0.0.2') > 49; i++)
      await new Promise((r) => setTimeout(r, 20))
    const again = await rawConnect(srv.port, '127.0.0.1', '127.0.0.2')
    open.push(again)
    assert.match(await again.firstLine, /^220 /)
  })

  test('total: the 11th connection with max 10 gets 421 4.3.2 and a close', async () => {
    const srv = await startTestServer({ serverLimits: { maxConnections: 10, maxConnectionsPerIp: 0 } })
    servers.push(srv)
    for (let i = 0; i < 10; i++) {
      const c = await rawConnect(srv.port, '127.0.0.1', `127.0.0.${10 + i}`)
      open.push(c)
      assert.match(await c.firstLine, /^220 /)
    }
    const c = await rawConnect(srv.port, '127.0.0.1', '127.0.0.99')
    open.push(c)
    assert.equal(await c.closed, tooMany)
  })
})
