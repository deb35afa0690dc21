import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { type RawConnection, rawConnect } from '../../../test/protocol/raw-connect.ts'
import { ConfigError } from '../../config/config-error.ts'
import { startTestServer, type TestServer } from '../../testing/index.ts'
import hostsAllow, { parseHostsAllow } from './hosts-allow.ts'

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
