import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { scriptedDns } from '../../dns/index.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { pass } from '../../host/verdict.ts'
import { reverseName } from '../../net/ip.ts'
import { openSession, startTestServer, withTestServer } from '../../testing/index.ts'
import { type LoopbackDns, startLoopbackDns } from '../dns-test-support.ts'
import { acceptRcpt, sendMail } from '../test-support.ts'
import fcrdns, { checkFcrdns, Fcrdns } from './fcrdns.ts'

const PTR = reverseName('127.0.0.1') ?? ''

/** Records what fcrdns left for later plugins. */
const seen: { host?: string | undefined; result?: string | undefined }[] = []
const probe = definePlugin({
  name: 'test/probe',
  options: {},
  setup: () => ({
    hooks: {
      connect: (ctx) => {
        seen.push({ host: ctx.connection.remoteHost, result: ctx.get(Fcrdns)?.result })
        return pass()
      },
    },
  }),
})

describe('fcrdns against a DNS server on loopback', () => {
  let confirmed: LoopbackDns
  let unconfirmed: LoopbackDns
  before(async () => {
    confirmed = await startLoopbackDns(
      [`${PTR}. 300 IN PTR mail.client.test.`, 'mail.client.test. 300 IN A 127.0.0.1'],
      { zones: ['client.test', '127.in-addr.arpa'] },
    )
    unconfirmed = await startLoopbackDns(
      [`${PTR}. 300 IN PTR forged.client.test.`, 'forged.client.test. 300 IN A 192.0.2.7'],
      { zones: ['client.test', '127.in-addr.arpa'] },
    )
  })
  after(async () => {
    await confirmed.stop()
    await unconfirmed.stop()
  })

  it('a confirmed name is the verified host name: the Received line shows it, iprev=pass', () =>
    withTestServer({ plugins: [fcrdns(), probe(), acceptRcpt()], dns: confirmed.dns }, async (srv) => {
      const c = await openSession(srv)
      assert.equal((await sendMail(c, 'a@client.test', ['u@mx.test'], 'Subject: x\r\n\r\nhi\r\n')).code, 250)
      await c.quit()
      const stored = srv.queued[0]?.data.toString() ?? ''
      assert.match(stored, /^Received: from client\.example \(mail\.client\.test \[127\.0\.0\.1\]\)/m)
      assert.match(stored, /\tiprev=pass \(mail\.client\.test\) policy\.iprev=127\.0\.0\.1/)
      assert.deepEqual(seen.at(-1), { host: 'mail.client.test', result: 'pass' })
    }))

  it('a name that does not resolve back: reject 0 (the default) logs; reject 1 refuses with 421 4.7.25', async () => {
    await withTestServer({ plugins: [fcrdns(), probe()], dns: unconfirmed.dns }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.quit()
      assert.deepEqual(seen.at(-1), { host: undefined, result: 'fail' })
    })
    await withTestServer({ plugins: [fcrdns({ reject: '1' })], dns: unconfirmed.dns }, async (srv) => {
      const c = await srv.connect()
      assert.equal(
        (await c.reply()).raw,
        '421 4.7.25 The reverse DNS of 127.0.0.1 (forged.client.test) does not resolve back to it\r\n',
      )
    })
    await withTestServer(
      { plugins: [fcrdns({ reject: '1', reject_type: 'perm' })], dns: unconfirmed.dns },
      async (srv) => {
        const c = await srv.connect()
        assert.match((await c.reply()).raw, /^554 5\.7\.25 /)
      },
    )
  })
})

describe('fcrdns logic (scripted DNS)', () => {
  it('results: pass, fail, permerror, temperror; the /24 network match of qpsmtpd; IPv6', async () => {
    const dns = scriptedDns({
      [reverseName('192.0.2.1') ?? '']: { PTR: ['a.example', 'b.example'] },
      'a.example': { A: ['198.51.100.1'] },
      'b.example': { A: ['192.0.2.1'] },
      [reverseName('192.0.2.2') ?? '']: { PTR: ['pool.example'] },
      'pool.example': { A: ['192.0.2.99'] },
      [reverseName('192.0.2.3') ?? '']: 'servfail',
      [reverseName('192.0.2.4') ?? '']: { PTR: ['localhost'] },
      localhost: { A: ['192.0.2.4'] },
      [reverseName('2001:db8::25') ?? '']: { PTR: ['v6.example'] },
      'v6.example': { AAAA: ['2001:db8:0:0::25'] },
      [reverseName('192.0.2.5') ?? '']: { PTR: ['slow.example'] },
      'slow.example': 'timeout',
    })
    const got = async (ip: string) => {
      const r = await checkFcrdns(dns, ip)
      return `${r.result} ${r.names.join(',')} ${r.networkMatch}`
    }
    assert.equal(await got('192.0.2.1'), 'pass b.example true')
    assert.equal(await got('192.0.2.2'), 'fail pool.example true')
    assert.equal(await got('192.0.2.3'), 'temperror  false')
    assert.equal(await got('192.0.2.4'), 'fail localhost false')
    assert.equal(await got('192.0.2.9'), 'permerror  false')
    assert.equal(await got('2001:db8::25'), 'pass v6.example true')
    assert.equal(await got('::ffff:192.0.2.1'), 'pass b.example true')
    assert.equal(await got('192.0.2.5'), 'temperror slow.example false')
  })

  it('with reject 1 a DNS failure answers 421 4.4.3 (on_error defer) or passes (on_error pass), never 5xx', async () => {
    const dns = scriptedDns({ [PTR]: 'timeout' })
    for (const [on_error, want] of [
      ['defer', /^421 4\.4\.3 Reverse DNS cannot be checked now/],
      ['pass', /^220 /],
    ] as const) {
      const srv = await startTestServer({ plugins: [fcrdns({ reject: '1', on_error })], dns })
      try {
        const c = await srv.connect()
        assert.match((await c.reply()).raw, want)
      } finally {
        await srv.close()
      }
    }
  })
})
