/**
 * The resolver as plugins get it (createDnsService: stub resolver and cache), against a real
 * unbound on loopback serving zones written here, and against a scripted UDP server for what
 * unbound will not do on demand (silence, SERVFAIL, forgeries, malformed answers).
 */
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import packet from 'dns-packet'
import { answer, startDnsResponder } from '../../test/peers/dns-responder.ts'
import { startUnbound, type Unbound } from '../../test/peers/unbound.ts'
import { objectConfigSource } from '../config/config-source.ts'
import { reverseName } from '../net/ip.ts'
import { createDnsService } from './config.ts'

const bigTxt = Array.from({ length: 10 }, (_, i) => `${i}`.repeat(200))
const chain = Array.from({ length: 10 }, (_, i) => `c${i}.test. 300 IN CNAME c${i + 1}.test.`)

let unbound: Unbound
before(async () => {
  unbound = await startUnbound({
    zones: { 'test.': 'static', '2.0.192.in-addr.arpa.': 'static', '8.b.d.0.1.0.0.2.ip6.arpa.': 'static' },
    records: [
      'test. 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60',
      'a.test. 300 IN A 192.0.2.1',
      'a.test. 300 IN AAAA 2001:db8::1',
      'mail.test. 300 IN MX 10 mx1.test.',
      'mail.test. 300 IN MX 20 mx2.test.',
      '1.2.0.192.in-addr.arpa. 300 IN PTR a.test.',
      `${reverseName('2001:db8::1')}. 300 IN PTR a.test.`,
      'txt.test. 300 IN TXT "v=spf1 -all"',
      'multi.test. 300 IN TXT "part one" "part two"',
      'alias.test. 120 IN CNAME alias2.test.',
      'alias2.test. 300 IN CNAME a.test.',
      'loop1.test. 300 IN CNAME loop2.test.',
      'loop2.test. 300 IN CNAME loop1.test.',
      `big.test. 300 IN TXT ${bigTxt.map((s) => `"${s}"`).join(' ')}`,
      'odd:name.test. 300 IN TXT "colon"',
      ...chain,
      'c10.test. 300 IN A 192.0.2.10',
    ],
  })
})
after(() => unbound.stop())

const service = (servers: readonly string[], settings: readonly string[] = [], now?: () => number) =>
  createDnsService(
    objectConfigSource({ dns_servers: servers, 'smtpd.conf': settings }),
    now === undefined ? {} : { now },
  )
const at = (s: { port: number }) => `127.0.0.1:${s.port}`

describe('dns resolver against unbound', () => {
  const records = [
    { name: 'A', q: ['a.test', 'A'], want: ['192.0.2.1'] },
    { name: 'AAAA', q: ['a.test', 'AAAA'], want: ['2001:db8::1'] },
    {
      name: 'MX',
      q: ['mail.test', 'MX'],
      want: [
        { exchange: 'mx1.test', priority: 10 },
        { exchange: 'mx2.test', priority: 20 },
      ],
    },
    { name: 'PTR of an IPv4 address', q: [reverseName('192.0.2.1'), 'PTR'], want: ['a.test'] },
    { name: 'PTR of an IPv6 address (ip6.arpa nibbles)', q: [reverseName('2001:db8::1'), 'PTR'], want: ['a.test'] },
    { name: 'TXT', q: ['txt.test', 'TXT'], want: [['v=spf1 -all']] },
    { name: 'TXT of several strings', q: ['multi.test', 'TXT'], want: [['part one', 'part two']] },
    { name: 'a name with a colon (SPF suite)', q: ['odd:name.test', 'TXT'], want: [['colon']] },
    { name: 'the CNAME itself', q: ['alias.test', 'CNAME'], want: ['alias2.test'] },
  ] as const
  for (const c of records)
    it(`answers ${c.name}`, async () => {
      const got = await service([at(unbound)]).query(c.q[0] ?? '', c.q[1])
      assert.equal(got.kind, 'records')
      // unbound rotates the order of records in an RRset.
      const sorted = got.kind === 'records' && got.records.map((r) => JSON.stringify(r)).sort()
      assert.deepEqual(
        sorted,
        c.want.map((r) => JSON.stringify(r)),
      )
    })

  it('follows a CNAME chain to the records, with the owner at its end and the lowest TTL', async () => {
    assert.deepEqual(await service([at(unbound)]).query('alias.test', 'A'), {
      kind: 'records',
      records: ['192.0.2.1'],
      ttl: 120,
      name: 'a.test',
    })
  })

  it('tells NXDOMAIN from NODATA, each with the SOA minimum as TTL', async () => {
    const dns = service([at(unbound)])
    assert.deepEqual(await dns.query('missing.test', 'A'), { kind: 'nxdomain', ttl: 60 })
    assert.deepEqual(await dns.query('a.test', 'MX'), { kind: 'nodata', ttl: 60 })
  })

  it('a TXT answer larger than the UDP size is fetched again over TCP', async () => {
    const dns = service([at(unbound)])
    const got = await dns.query('big.test', 'TXT')
    assert.deepEqual(got.kind === 'records' && got.records, [bigTxt])
    assert.deepEqual(
      { truncated: dns.stats().upstream?.truncated, tcp: dns.stats().upstream?.tcpQueries },
      { truncated: 1, tcp: 1 },
    )
  })

  it('without EDNS0 an answer over 512 octets needs TCP too', async () => {
    const dns = service([at(unbound)], ['dns_edns_size 0'])
    const got = await dns.query('big.test', 'TXT')
    assert.equal(got.kind, 'records')
    assert.equal(dns.stats().upstream?.tcpQueries, 1)
  })

  it('a CNAME loop or a chain past dns_cname_limit is a failure, not "no records"', async () => {
    const dns = service([at(unbound)])
    const loop = await dns.query('loop1.test', 'A')
    assert.ok(loop.kind === 'servfail' && /CNAME loop/.test(loop.detail), JSON.stringify(loop))
    const long = await dns.query('c0.test', 'A')
    assert.ok(long.kind === 'servfail' && /longer than 8/.test(long.detail), JSON.stringify(long))
    const allowed = await service([at(unbound)], ['dns_cname_limit 10']).query('c0.test', 'A')
    assert.deepEqual(allowed.kind === 'records' && allowed.records, ['192.0.2.10'])
  })

  it('keeps a negative answer for its TTL, then asks again', async () => {
    let now = 0
    const dns = service([at(unbound)], [], () => now)
    await dns.query('gone.test', 'A')
    now += 59_000
    assert.deepEqual(await dns.query('gone.test', 'A'), { kind: 'nxdomain', ttl: 1 })
    assert.equal(dns.stats().upstream?.udpQueries, 1)
    now += 1_000
    await dns.query('gone.test', 'A')
    assert.equal(dns.stats().upstream?.udpQueries, 2)
    assert.equal(dns.stats().cacheHits, 1)
  })
})

describe('dns resolver against failing servers', () => {
  it('a server that never answers times out, then the next one answers; the silent one is asked last after', async () => {
    const silent = await startDnsResponder(() => [])
    try {
      const dns = service([at(silent), at(unbound)], ['dns_timeout 1s', 'dns_retries 1'])
      assert.equal((await dns.query('a.test', 'A')).kind, 'records')
      assert.equal((await dns.query('a.test', 'AAAA')).kind, 'records')
      assert.equal(silent.queries.length, 1)
      assert.equal(dns.stats().upstream?.attemptTimeouts, 1)
    } finally {
      await silent.close()
    }
  })

  it('no answer from any server is a timeout, not NXDOMAIN', async () => {
    const silent = await startDnsResponder(() => [])
    try {
      const dns = service([at(silent)], ['dns_timeout 1500ms', 'dns_retries 2'])
      assert.deepEqual(await dns.query('a.test', 'A'), { kind: 'timeout' })
      assert.equal(silent.queries.length, 3)
      assert.equal(dns.stats().answers.timeout, 1)
    } finally {
      await silent.close()
    }
  })

  it('an aborted signal rejects the query with its reason at once', async () => {
    const silent = await startDnsResponder(() => [])
    try {
      const dns = service([at(silent)], ['dns_timeout 60s'])
      const controller = new AbortController()
      const pending = dns.query('a.test', 'A', { signal: controller.signal })
      while (silent.queries.length === 0) await sleep(5)
      const reason = new Error('client disconnected')
      controller.abort(reason)
      await assert.rejects(pending, (e) => e === reason)
    } finally {
      await silent.close()
    }
  })

  for (const rcode of ['SERVFAIL', 'REFUSED'] as const)
    it(`${rcode} is a failure with its detail, and the next server is asked`, async () => {
      const failing = await startDnsResponder((q) => [answer(q, { rcode })])
      try {
        const alone = await service([at(failing)], ['dns_retries 0']).query('a.test', 'A')
        assert.deepEqual(alone, { kind: 'servfail', detail: `${rcode} from ${at(failing)}` })
        const withBackup = await service([at(failing), at(unbound)]).query('a.test', 'A')
        assert.equal(withBackup.kind, 'records')
      } finally {
        await failing.close()
      }
    })

  it('answers with another id, name or type are ignored, and so are datagrams from another port', async () => {
    const forger = createSocket('udp4')
    await new Promise<void>((resolve) => forger.bind(0, '127.0.0.1', resolve))
    const real = { name: 'a.test', type: 'A', ttl: 60, data: '192.0.2.1' } as const
    const fake = { ...real, data: '203.0.113.66' }
    const server = await startDnsResponder(async (q) => {
      const from = q.from === 'tcp' ? undefined : q.from
      const spoofed = answer(q, { answers: [fake] })
      if (from) forger.send(packet.encode(spoofed), from.port, from.address)
      await sleep(20)
      return [
        answer(q, { id: (q.id + 1) & 0xffff, answers: [fake] }),
        answer(q, { questions: [{ name: 'b.test', type: 'A' }], answers: [{ ...fake, name: 'b.test' }] }),
        answer(q, { questions: [{ name: q.name, type: 'AAAA' }], answers: [fake] }),
        answer(q, { answers: [real] }),
      ]
    })
    try {
      const dns = service([at(server)])
      assert.deepEqual(await dns.query('a.test', 'A'), {
        kind: 'records',
        records: ['192.0.2.1'],
        ttl: 60,
        name: 'a.test',
      })
      assert.equal(dns.stats().upstream?.ignored, 3)
    } finally {
      forger.close()
      await server.close()
    }
  })

  it('a malformed answer is a failure, never records', async () => {
    const server = await startDnsResponder((q) => {
      const buf = packet.encode(answer(q, { answers: [{ name: q.name, type: 'A', ttl: 60, data: '127.0.0.2' }] }))
      // The A record's RDLENGTH says 3 where 4 octets of address follow.
      buf.writeUInt16BE(3, buf.length - 6)
      return [buf]
    })
    try {
      const got = await service([at(server)], ['dns_retries 0']).query('listed.test', 'A')
      assert.ok(got.kind === 'servfail' && /malformed/.test(got.detail), JSON.stringify(got))
    } finally {
      await server.close()
    }
  })

  it('an answer over dns_answer_size_limit is a failure', async () => {
    const server = await startDnsResponder((q) => [
      answer(q, { answers: [{ name: q.name, type: 'TXT', ttl: 60, data: ['x'.repeat(255), 'y'.repeat(255), 'z'] }] }),
    ])
    try {
      const got = await service([at(server)], ['dns_answer_size_limit 512', 'dns_retries 0']).query('x.test', 'TXT')
      assert.ok(got.kind === 'servfail' && /exceeds dns_answer_size_limit/.test(got.detail), JSON.stringify(got))
    } finally {
      await server.close()
    }
  })

  it('a server that refuses EDNS0 with FORMERR is asked again without it (RFC 6891 §7)', async () => {
    const server = await startDnsResponder((q) => {
      const hasOpt = q.raw.readUInt16BE(10) > 0
      return [
        hasOpt
          ? answer(q, { rcode: 'FORMERR' })
          : answer(q, { answers: [{ name: q.name, type: 'A', data: '192.0.2.7' }] }),
      ]
    })
    try {
      const got = await service([at(server)]).query('old.test', 'A')
      assert.deepEqual(got.kind === 'records' && got.records, ['192.0.2.7'])
      assert.deepEqual(
        server.queries.map((q) => q.raw.readUInt16BE(10)),
        [1, 0],
      )
    } finally {
      await server.close()
    }
  })

  it('no more than dns_max_inflight lookups are on the wire at once; the rest wait their turn', async () => {
    let open = 0
    let most = 0
    const server = await startDnsResponder(async (q) => {
      most = Math.max(most, ++open)
      await sleep(30)
      open--
      return [answer(q, { answers: [{ name: q.name, type: 'A', ttl: 60, data: '127.0.0.2' }] })]
    })
    try {
      const dns = service([at(server)], ['dns_max_inflight 2'])
      const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => dns.query(`${i}.zen.test`, 'A')))
      assert.ok(answers.every((a) => a.kind === 'records'))
      assert.equal(most, 2)
      assert.equal(dns.stats().upstream?.waitedForSlot, 4)
    } finally {
      await server.close()
    }
  })

  it('identical queries under way reach the server once', async () => {
    const server = await startDnsResponder(async (q) => {
      await sleep(50)
      return [answer(q, { answers: [{ name: q.name, type: 'A', ttl: 60, data: '127.0.0.2' }] })]
    })
    try {
      const dns = service([at(server)])
      const answers = await Promise.all(Array.from({ length: 20 }, () => dns.query('2.0.0.127.zen.test', 'A')))
      assert.ok(answers.every((a) => a.kind === 'records'))
      assert.equal(server.queries.length, 1)
      assert.equal(dns.stats().coalesced, 19)
    } finally {
      await server.close()
    }
  })
})
