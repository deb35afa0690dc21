import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { type RawConnection, rawConnect } from '../../../test/protocol/raw-connect.ts'
import { fakeClock } from '../../clock/index.ts'
import { ConfigError } from '../../config/config-error.ts'
import type { Store } from '../../store/index.ts'
import { startTestServer, type TestServer } from '../../testing/index.ts'
import karma from '../karma/index.ts'
import { failingStore, storeKinds, TestStores } from '../state-test-support.ts'
import hostsAllow, { karmaLimit, parseHostsAllow } from './hosts-allow.ts'

const lines = (...text: string[]) => text.map((t, i) => ({ text: t, file: 'hosts_allow', line: i + 1 }))

describe('hosts_allow rules file', () => {
  test('parses IPv4 and IPv6, with and without a mask and a message', () => {
    const rules = parseHostsAllow(
      lines('127.0.0.5 DENY go away now', '10.0.0.0/8 DENYSOFT', '2001:db8::/32 ok', '::1 DECLINED fine'),
    )
    assert.deepEqual(
      rules.map((r) => [r.code, r.message]),
      [
        ['DENY', 'go away now'],
        ['DENYSOFT', undefined],
        ['OK', undefined],
        ['DECLINED', 'fine'],
      ],
    )
    assert.ok(rules[2]?.net.contains('2001:db8:1::5'))
    assert.ok(!rules[2]?.net.contains('2001:db9::5'))
  })

  test('a bad line is a configuration error at its file and line', () => {
    for (const bad of ['127.0.0.1', '127.0.0.1 MAYBE no', '300.0.0.1 DENY x', '10.0.0.0/33 DENY']) {
      assert.throws(
        () => parseHostsAllow(lines('127.0.0.9 DENY ok', bad)),
        (e: unknown) => e instanceof ConfigError && /hosts_allow:2/.test(e.message),
        bad,
      )
    }
  })
})

describe('hosts_allow plugin', { timeout: 20_000 }, () => {
  const open: RawConnection[] = []
  const servers: TestServer[] = []
  after(async () => {
    for (const c of open) c.socket.destroy()
    for (const s of servers) await s.close()
  })
  const connect = async (srv: TestServer, from: string, host = '127.0.0.1') => {
    const c = await rawConnect(srv.port, host, from)
    open.push(c)
    return c
  }

  test('max_conn_ip: the connection past the limit gets 421 4.7.0 and a close', async () => {
    const srv = await startTestServer({ plugins: [hostsAllow({ max_conn_ip: 3 })] })
    servers.push(srv)
    for (let i = 0; i < 3; i++) assert.match(await (await connect(srv, '127.0.0.2')).firstLine, /^220 /)
    const fourth = await connect(srv, '127.0.0.2')
    assert.equal(await fourth.closed, '421 4.7.0 Sorry, too many connections from 127.0.0.2, try again later\r\n')
    assert.match(await (await connect(srv, '127.0.0.3')).firstLine, /^220 /)
  })

  test('rules: first match decides; DENY, DENYSOFT with messages; OK and others pass', async () => {
    const srv = await startTestServer({
      plugins: [hostsAllow()],
      config: {
        hosts_allow: [
          '127.0.0.7 OK trusted even inside the denied block',
          '127.0.0.0/29 DENY you are blocked',
          '127.0.0.8/30 DENYSOFT busy, later',
          '127.0.0.12 DENY_DISCONNECT',
        ],
      },
    })
    servers.push(srv)
    assert.equal(await (await connect(srv, '127.0.0.2')).closed, '554 5.7.1 you are blocked\r\n')
    assert.match(await (await connect(srv, '127.0.0.7')).firstLine, /^220 /)
    assert.equal(await (await connect(srv, '127.0.0.9')).closed, '421 4.7.0 busy, later\r\n')
    assert.match(await (await connect(srv, '127.0.0.12')).closed, /^554 5\.7\.1 /)
    assert.match(await (await connect(srv, '127.0.0.20')).firstLine, /^220 /)
  })

  test('IPv6 rules match IPv6 clients', async (t) => {
    const srv = await startTestServer({
      plugins: [hostsAllow()],
      config: { hosts_allow: ['::1/128 DENY no IPv6 loopback here'] },
      listeners: [{ host: '::1', port: 0 }],
    }).catch(() => undefined)
    if (srv === undefined) return t.skip('no IPv6 loopback')
    servers.push(srv)
    const c = await rawConnect(srv.port, '::1')
    open.push(c)
    assert.equal(await c.closed, '554 5.7.1 no IPv6 loopback here\r\n')
  })
})

describe('hosts_allow counts across processes and nodes', { timeout: 60_000 }, () => {
  const stores = new TestStores()
  const open: RawConnection[] = []
  const servers: TestServer[] = []
  after(async () => {
    for (const c of open) c.socket.destroy()
    for (const s of servers) await s.close()
    await stores.close()
  })
  const connect = async (srv: TestServer, from: string) => {
    const c = await rawConnect(srv.port, '127.0.0.1', from)
    open.push(c)
    return c
  }
  /** The lease set of an address, as the plugin keeps it. */
  const leases = (store: Store, ip: string) => store.scope('connect/hosts-allow').get(`conn:${ip}`)
  const TOO_MANY = (ip: string) => `421 4.7.0 Sorry, too many connections from ${ip}, try again later\r\n`

  for (const kind of storeKinds) {
    test(`two servers sharing a ${kind} store (two workers, or two nodes): one limit`, async () => {
      const clock = fakeClock()
      const store = await stores.open(kind, clock)
      const [a, b] = await Promise.all(
        [1, 2].map(() => startTestServer({ plugins: [hostsAllow({ max_conn_ip: 2 })], store, clock })),
      )
      servers.push(a!, b!)
      const first = await connect(a!, '127.0.0.2')
      assert.match(await first.firstLine, /^220 /)
      const second = await connect(b!, '127.0.0.2')
      assert.match(await second.firstLine, /^220 /)
      assert.equal(await (await connect(a!, '127.0.0.2')).closed, TOO_MANY('127.0.0.2'))
      assert.equal(await (await connect(b!, '127.0.0.2')).closed, TOO_MANY('127.0.0.2'))
      second.socket.end('QUIT\r\n')
      await second.closed
      // The lease goes back when the session ends (its disconnect hook), just after the close.
      for (let i = 0; i < 100 && (await leases(store, '127.0.0.2'))?.split(' ').length !== 2; i++)
        await new Promise((r) => setTimeout(r, 20))
      assert.match(await (await connect(a!, '127.0.0.2')).firstLine, /^220 /, 'a slot was given back')
      assert.match(await (await connect(b!, '127.0.0.3')).firstLine, /^220 /, 'another address, another count')
    })
  }

  test('a connection whose process died is forgotten when its lease runs out; live ones renew theirs', async () => {
    const clock = fakeClock()
    const store = await stores.open('sqlite', clock)
    // What a worker that crashed with an open connection leaves behind.
    await store.scope('connect/hosts-allow').lease('conn:127.0.0.4', 'dead-node.1', 60_000)
    const srv = await startTestServer({ plugins: [hostsAllow({ max_conn_ip: 2 })], store, clock })
    servers.push(srv)
    const live = await connect(srv, '127.0.0.4')
    assert.match(await live.firstLine, /^220 /)
    assert.equal(await (await connect(srv, '127.0.0.4')).closed, TOO_MANY('127.0.0.4'))
    await clock.advance(61_000)
    const holders = (await leases(store, '127.0.0.4'))!.split(' ').filter((_, i) => i % 2 === 0)
    assert.equal(holders.length, 1, 'the dead holder dropped out, the live connection renewed its lease')
    assert.notEqual(holders[0], 'dead-node.1')
    assert.match(await (await connect(srv, '127.0.0.4')).firstLine, /^220 /)
  })

  test("karma's history moves the limit: +3 above 5, 1 at 0 or less (qpsmtpd's karma_bump)", async () => {
    assert.deepEqual(
      [undefined, -2, 0, 1, 5, 6].map((h) => karmaLimit(2, h)),
      [2, 1, 1, 2, 2, 5],
    )
    const srv = await startTestServer({ plugins: [karma(), hostsAllow({ max_conn_ip: 1 })] })
    servers.push(srv)
    await srv.store.set('karma:2130706437', '0:0:6:6') // 127.0.0.5
    for (let i = 0; i < 4; i++) assert.match(await (await connect(srv, '127.0.0.5')).firstLine, /^220 /)
    assert.equal(await (await connect(srv, '127.0.0.5')).closed, TOO_MANY('127.0.0.5'))
  })

  test('the store cannot answer: this process counts alone (on_error pass), or the client is refused', async () => {
    const srv = await startTestServer({ plugins: [hostsAllow({ max_conn_ip: 1 })], store: failingStore() })
    servers.push(srv)
    assert.match(await (await connect(srv, '127.0.0.6')).firstLine, /^220 /)
    assert.equal(await (await connect(srv, '127.0.0.6')).closed, TOO_MANY('127.0.0.6'))
    const strict = await startTestServer({
      plugins: [hostsAllow({ max_conn_ip: 1, on_error: 'defer' })],
      store: failingStore(),
    })
    servers.push(strict)
    assert.equal(
      await (await connect(strict, '127.0.0.7')).closed,
      '421 4.3.0 Connection limits unavailable, try again later\r\n',
    )
  })
})
