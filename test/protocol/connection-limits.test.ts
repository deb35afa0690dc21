/**
 * Connection floods (security.md §1.9): per-address and total limits answer 421 and close,
 * never a silent stall. 60 sockets from 127.0.0.2 with 50 allowed: 51 to 60 get the reply.
 * Connections in an implicit-TLS handshake count from accept (issue 18 F3: with a limit of 20,
 * 200 silent smtps connections were all held).
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

  test('implicit TLS: connections still in their handshake count towards the total', async () => {
    const srv = await startTestServer({ tls: true, serverLimits: { maxConnections: 5, maxConnectionsPerIp: 0 } })
    servers.push(srv)
    const smtps = srv.smtpsPort as number
    // Five silent connections to the smtps port: no ClientHello, so no session yet.
    const silent: RawConnection[] = []
    for (let i = 0; i < 5; i++) {
      const c = await rawConnect(smtps, '127.0.0.1', `127.0.3.${i + 1}`)
      open.push(c)
      silent.push(c)
    }
    // Refused on either listener: 421 on the smtp port; the smtps port closes without a
    // cleartext reply (the client expects a TLS record).
    const plain = await rawConnect(srv.port, '127.0.0.1', '127.0.3.100')
    open.push(plain)
    assert.equal(await plain.closed, tooMany)
    const tls = await rawConnect(smtps, '127.0.0.1', '127.0.3.101')
    open.push(tls)
    assert.equal(await tls.closed, '')
    // A silent one gone frees its slot.
    silent[0]?.socket.destroy()
    let again = await rawConnect(srv.port, '127.0.0.1', '127.0.3.102')
    for (let i = 0; i < 50 && (await again.firstLine) === tooMany; i++) {
      await new Promise((r) => setTimeout(r, 20))
      again = await rawConnect(srv.port, '127.0.0.1', '127.0.3.102')
    }
    open.push(again)
    assert.match(await again.firstLine, /^220 /)
  })

  test('a finished session frees its slot, with and without TLS', async () => {
    const srv = await startTestServer({ tls: true, serverLimits: { maxConnections: 1, maxConnectionsPerIp: 0 } })
    servers.push(srv)
    const greetedAfterSlotFreed = async (tls: boolean) => {
      for (let i = 0; ; i++) {
        // Refused: 421 in clear text, or on smtps a close before the TLS handshake.
        const c = await srv.connect({ tls }).catch(() => undefined)
        const r = await c?.reply().catch(() => undefined)
        if (c !== undefined && r?.code === 220) return c
        if (!tls) assert.equal(r?.raw, tooMany)
        assert.ok(i < 50, 'the previous session still holds the only slot')
        c?.destroy()
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    for (const mode of ['plain', 'smtps', 'starttls', 'plain'] as const) {
      const c = await greetedAfterSlotFreed(mode === 'smtps')
      await c.send('EHLO client.test', 250)
      if (mode === 'starttls') {
        await c.startTls()
        await c.send('EHLO client.test', 250)
      }
      await c.send('QUIT', 221)
      await c.closed()
    }
  })
})
