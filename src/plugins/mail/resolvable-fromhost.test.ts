import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type DnsResolver, scriptedDns } from '../../dns/index.ts'
import { openSession, withTestServer } from '../../testing/index.ts'
import { type LoopbackDns, startLoopbackDns } from '../dns-test-support.ts'
import { ask } from '../test-support.ts'
import resolvableFromhost from './resolvable-fromhost.ts'

let loopback: LoopbackDns
before(async () => {
  loopback = await startLoopbackDns(
    [
      'mx.test. 300 IN MX 10 in1.mx.test.',
      'mx.test. 300 IN MX 20 in2.mx.test.',
      'in2.mx.test. 300 IN AAAA 2001:db8::25',
      'aonly.test. 300 IN A 192.0.2.25',
      'v6only.test. 300 IN AAAA 2001:db8::26',
      'nullmx.test. 300 IN MX 0 .',
      'private.test. 300 IN MX 10 in.private.test.',
      'in.private.test. 300 IN A 10.1.2.3',
      'deadmx.test. 300 IN MX 10 nowhere.deadmx.test.',
      'txtonly.test. 300 IN TXT "v=spf1 -all"',
    ],
    { zones: ['mx.test', 'aonly.test', 'v6only.test', 'nullmx.test', 'private.test', 'deadmx.test', 'txtonly.test'] },
  )
})
after(() => loopback.stop())

describe('resolvable_fromhost against a DNS server on loopback', () => {
  const cases = [
    { from: 'a@mx.test', want: '250 2.1.0 Sender OK\r\n' },
    { from: 'a@aonly.test', want: '250 2.1.0 Sender OK\r\n' },
    { from: 'a@v6only.test', want: '250 2.1.0 Sender OK\r\n' },
    { from: 'a@[192.0.2.1]', want: '250 2.1.0 Sender OK\r\n' },
    { from: '', want: '250 2.1.0 Sender OK\r\n' },
    { from: 'a@nullmx.test', want: '550 5.7.27 Sender domain nullmx.test has a null MX: it takes no mail\r\n' },
    { from: 'a@nosuch.test', want: '450 4.1.8 Sender domain nosuch.test does not exist\r\n' },
    { from: 'a@txtonly.test', want: '450 4.1.8 Sender domain txtonly.test has no MX or address\r\n' },
    { from: 'a@deadmx.test', want: '450 4.1.8 Sender domain deadmx.test has no usable MX host\r\n' },
    // 10.0.0.0/8 is in invalid_resolvable_fromhost.
    { from: 'a@private.test', want: '450 4.1.8 Sender domain private.test has no usable MX host\r\n' },
  ]
  it('checks MX, then A/AAAA; refuses null MX permanently and the rest per reject_type (temp)', () =>
    withTestServer(
      {
        plugins: [resolvableFromhost()],
        config: { invalid_resolvable_fromhost: ['127.0.0.0/8 ', '10.0.0.0/8'] },
        dns: loopback.dns,
      },
      async (srv) => {
        const c = await openSession(srv)
        for (const t of cases) {
          assert.equal(await ask(c, `MAIL FROM:<${t.from}>`), t.want, t.from)
          await c.send('RSET', 250)
        }
        await c.quit()
      },
    ))

  it('reject_type perm: 550 5.1.8', () =>
    withTestServer({ plugins: [resolvableFromhost({ reject_type: 'perm' })], dns: loopback.dns }, async (srv) => {
      const c = await openSession(srv)
      assert.equal(await ask(c, 'MAIL FROM:<a@nosuch.test>'), '550 5.1.8 Sender domain nosuch.test does not exist\r\n')
    }))
})

describe('resolvable_fromhost DNS failures (scripted DNS)', () => {
  it('a failed MX lookup defers 451 4.4.3 and is not followed by A (RFC 5321 §5.1), even with reject_type perm', async () => {
    const dns = scriptedDns({
      'slow.test': 'timeout',
      'mxfail.test': { MX: [{ exchange: 'in.mxfail.test', priority: 1 }] },
      'in.mxfail.test': 'servfail',
    })
    for (const from of ['a@slow.test', 'a@mxfail.test'])
      await withTestServer({ plugins: [resolvableFromhost({ reject_type: 'perm' })], dns }, async (srv) => {
        const c = await openSession(srv)
        const domain = from.slice(2)
        assert.equal(
          await ask(c, `MAIL FROM:<${from}>`),
          `451 4.4.3 Temporary address resolution failure for ${domain}, try again later\r\n`,
        )
      })
    await withTestServer({ plugins: [resolvableFromhost({ on_error: 'pass' })], dns }, async (srv) => {
      const c = await openSession(srv)
      assert.equal(await ask(c, 'MAIL FROM:<a@slow.test>'), '250 2.1.0 Sender OK\r\n')
    })
  })

  it('MX, A and AAAA are asked at once, then every MX host at once', async () => {
    const dns = scriptedDns(
      {
        'many.test': {
          MX: [
            { exchange: 'mx1.many.test', priority: 10 },
            { exchange: 'mx2.many.test', priority: 20 },
          ],
        },
        'mx2.many.test': { A: ['192.0.2.2'] },
      },
      { delayMs: 300 },
    )
    // Counts the lookups under way at once.
    let inflight = 0
    const peaks: number[] = []
    const counting: DnsResolver = {
      query: async (name, type, opts) => {
        peaks.push(++inflight)
        try {
          return await dns.query(name, type, opts)
        } finally {
          inflight--
        }
      },
    }
    await withTestServer({ plugins: [resolvableFromhost()], dns: counting }, async (srv) => {
      const c = await openSession(srv)
      assert.equal(await ask(c, 'MAIL FROM:<a@many.test>'), '250 2.1.0 Sender OK\r\n')
      assert.deepEqual(
        dns.calls.map((q) => `${q.name} ${q.type}`),
        [
          'many.test MX',
          'many.test A',
          'many.test AAAA',
          'mx1.many.test A',
          'mx1.many.test AAAA',
          'mx2.many.test A',
          'mx2.many.test AAAA',
        ],
      )
      // Two rounds: three lookups side by side, then four.
      assert.deepEqual(peaks, [1, 2, 3, 1, 2, 3, 4])
    })
  })
})
