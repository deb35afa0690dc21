import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { scriptedDns } from '../../dns/index.ts'
import { reverseName } from '../../net/ip.ts'
import { withTestServer } from '../../testing/index.ts'
import { type LoopbackDns, startLoopbackDns } from '../dns-test-support.ts'
import { ask } from '../test-support.ts'
import heloChecks from './checks.ts'

const PTR = reverseName('127.0.0.1') ?? ''

// The client is 127.0.0.1, whose PTR is mx.client.test.
let loopback: LoopbackDns
before(async () => {
  loopback = await startLoopbackDns(
    [
      `${PTR}. 300 IN PTR mx.client.test.`,
      'mx.client.test. 300 IN A 127.0.0.1',
      'other.client.test. 300 IN A 192.0.2.50',
      'v6only.client.test. 300 IN AAAA 2001:db8::25',
      'nearby.elsewhere.test. 300 IN A 127.0.0.99',
      'far.elsewhere.test. 300 IN A 192.0.2.9',
      'noaddr.elsewhere.test. 300 IN MX 10 mx.client.test.',
    ],
    { zones: ['client.test', 'elsewhere.test', '127.in-addr.arpa'] },
  )
})
after(() => loopback.stop())

async function heloReply(policy: 'rfc' | 'strict', helo: string, extra: Parameters<typeof heloChecks>[0] = {}) {
  return withTestServer({ plugins: [heloChecks({ policy, ...extra })], dns: loopback.dns }, async (srv) => {
    const c = await srv.connect()
    await c.expect(220)
    return ask(c, `EHLO ${helo}`)
  })
}

describe('helo policy rfc and strict against a DNS server on loopback', () => {
  const cases = [
    { policy: 'rfc', helo: 'workstation', want: '550 5.7.1 HELO name is not fully qualified. Read RFC 2821\r\n' },
    {
      policy: 'rfc',
      helo: 'bad_name.client.test',
      want: '550 5.7.1 HELO name contains invalid FQDN characters. Read RFC 1035\r\n',
    },
    { policy: 'rfc', helo: 'missing.client.test', want: '550 5.7.1 HELO hostname does not exist\r\n' },
    { policy: 'rfc', helo: 'noaddr.elsewhere.test', want: '550 5.7.1 HELO hostname did not resolve\r\n' },
    // qpsmtpd asked for A only: an IPv6-only name "did not resolve" there.
    { policy: 'rfc', helo: 'v6only.client.test', want: /^250[ -]/ },
    { policy: 'rfc', helo: 'other.client.test', want: /^250[ -]/ },
    { policy: 'rfc', helo: '[127.0.0.1]', want: /^250[ -]/ },
    { policy: 'strict', helo: '[127.0.0.1]', want: '550 5.7.1 RFC 2821 allows an address literal, but we do not\r\n' },
    { policy: 'strict', helo: 'far.elsewhere.test', want: '550 5.7.1 That HELO hostname fails FCrDNS\r\n' },
    // Forward match (same /24), reverse match (same domain as the PTR name), exact match.
    { policy: 'strict', helo: 'nearby.elsewhere.test', want: /^250[ -]/ },
    { policy: 'strict', helo: 'other.client.test', want: /^250[ -]/ },
    { policy: 'strict', helo: 'mx.client.test', want: /^250[ -]/ },
  ] as const
  for (const t of cases)
    it(`${t.policy}: EHLO ${t.helo}`, async () => {
      const got = await heloReply(t.policy, t.helo)
      if (typeof t.want === 'string') assert.equal(got, t.want)
      else assert.match(got, t.want)
    })
})

describe('helo DNS failures (scripted DNS)', () => {
  it('no rDNS: refused; a DNS failure answers 421 4.4.3 (reject_type disconnect) or 450, or skips with on_error pass', async () => {
    const run = (dns: ReturnType<typeof scriptedDns>, extra: Parameters<typeof heloChecks>[0]) =>
      withTestServer({ plugins: [heloChecks({ policy: 'rfc', ...extra })], dns }, async (srv) => {
        const c = await srv.connect()
        await c.expect(220)
        return ask(c, 'EHLO mx.client.test')
      })
    const named = { 'mx.client.test': { A: ['127.0.0.1'] } }
    assert.equal(await run(scriptedDns(named), {}), '550 5.7.1 no rDNS for 127.0.0.1\r\n')
    const broken = scriptedDns({ ...named, [PTR]: 'servfail' })
    assert.equal(await run(broken, {}), '421 4.4.3 Cannot check your HELO name now (DNS failure), try again later\r\n')
    assert.equal(
      await run(broken, { reject_type: 'perm' }),
      '450 4.4.3 Cannot check your HELO name now (DNS failure), try again later\r\n',
    )
    assert.match(await run(broken, { on_error: 'pass' }), /^250[ -]/)
    assert.match(await run(broken, { reject: '0' }), /^250[ -]/)
  })
})
