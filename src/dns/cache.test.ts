import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createDnsCache, defaultCacheOptions } from './cache.ts'
import type { DnsAnswer, DnsResolver, QueryOptions } from './types.ts'

/** An upstream whose answers the test releases by hand, counting what it was asked. */
function manualUpstream() {
  const asked: {
    name: string
    type: string
    signal: AbortSignal | undefined
    answer: (a: DnsAnswer<unknown>) => void
  }[] = []
  const resolver: DnsResolver = {
    query: (name: string, type: string, opts?: QueryOptions) =>
      new Promise((resolve, reject) => {
        asked.push({ name, type, signal: opts?.signal, answer: resolve as (a: DnsAnswer<unknown>) => void })
        opts?.signal?.addEventListener('abort', () => reject(opts.signal?.reason))
      }),
  } as DnsResolver
  return { resolver, asked }
}

/** An upstream that answers at once from a table. */
function tableUpstream(table: Record<string, DnsAnswer<unknown>>) {
  let count = 0
  const resolver = {
    query: async (name: string) => {
      count++
      return table[name] ?? { kind: 'nxdomain', ttl: 60 }
    },
  } as DnsResolver
  return { resolver, count: () => count }
}

const clock = () => {
  let t = 1_000_000
  return { now: () => t, advance: (s: number) => (t += s * 1000) }
}

const a = (ip: string, ttl = 300): DnsAnswer<unknown> => ({ kind: 'records', records: [ip], ttl, name: 'x' })

describe('dns/cache', () => {
  it('answers from the cache until the TTL runs out, with the TTL left', async () => {
    const t = clock()
    const up = tableUpstream({ 'a.test': a('192.0.2.1', 300) })
    const dns = createDnsCache(up.resolver, { ...defaultCacheOptions, now: t.now })
    assert.deepEqual(await dns.query('a.test', 'A'), a('192.0.2.1', 300))
    t.advance(100)
    assert.deepEqual(await dns.query('A.TEST.', 'A'), a('192.0.2.1', 200))
    t.advance(200)
    await dns.query('a.test', 'A')
    assert.equal(up.count(), 2)
    assert.equal(dns.stats().cacheHits, 1)
  })

  it('keeps NXDOMAIN and NODATA for their negative TTL, capped by the operator (RFC 2308)', async () => {
    const t = clock()
    const up = tableUpstream({ 'nodata.test': { kind: 'nodata', ttl: 100_000 } })
    const dns = createDnsCache(up.resolver, { ...defaultCacheOptions, maxNegativeTtl: 600, now: t.now })
    await dns.query('nx.test', 'A')
    await dns.query('nodata.test', 'A')
    t.advance(59)
    assert.deepEqual(await dns.query('nx.test', 'A'), { kind: 'nxdomain', ttl: 1 })
    assert.equal(up.count(), 2)
    t.advance(1)
    await dns.query('nx.test', 'A')
    assert.equal(up.count(), 3)
    t.advance(539)
    assert.deepEqual(await dns.query('nodata.test', 'A'), { kind: 'nodata', ttl: 1 })
    t.advance(1)
    await dns.query('nodata.test', 'A')
    assert.equal(up.count(), 4)
  })

  it('does not keep failures, timeouts or answers with TTL 0', async () => {
    const up = tableUpstream({
      'fail.test': { kind: 'servfail', detail: 'SERVFAIL' },
      'slow.test': { kind: 'timeout' },
      'zero.test': a('192.0.2.1', 0),
    })
    const dns = createDnsCache(up.resolver)
    for (const name of ['fail.test', 'slow.test', 'zero.test', 'fail.test', 'slow.test', 'zero.test'])
      await dns.query(name, 'A')
    assert.equal(up.count(), 6)
    assert.equal(dns.stats().cacheEntries, 0)
  })

  it('holds at most maxEntries answers, dropping the least recently used', async () => {
    const up = tableUpstream({ '1.test': a('192.0.2.1'), '2.test': a('192.0.2.2'), '3.test': a('192.0.2.3') })
    const dns = createDnsCache(up.resolver, { ...defaultCacheOptions, maxEntries: 2 })
    await dns.query('1.test', 'A')
    await dns.query('2.test', 'A')
    await dns.query('1.test', 'A') // 1 is now the most recently used
    await dns.query('3.test', 'A') // evicts 2
    assert.equal(dns.stats().cacheEntries, 2)
    const before = up.count()
    await dns.query('1.test', 'A')
    assert.equal(up.count(), before)
    await dns.query('2.test', 'A')
    assert.equal(up.count(), before + 1)
  })

  it('keys by type as well as name', async () => {
    const up = tableUpstream({})
    const dns = createDnsCache(up.resolver)
    await dns.query('x.test', 'A')
    await dns.query('x.test', 'AAAA')
    assert.equal(up.count(), 2)
  })

  it('asks once for identical questions under way and gives every caller the answer', async () => {
    const up = manualUpstream()
    const dns = createDnsCache(up.resolver)
    const waiting = Array.from({ length: 50 }, () => dns.query('zen.test', 'A'))
    const other = dns.query('zen.test', 'TXT')
    assert.equal(up.asked.length, 2)
    up.asked[0]?.answer(a('127.0.0.2'))
    up.asked[1]?.answer({ kind: 'nxdomain', ttl: 60 })
    for (const answer of await Promise.all(waiting)) assert.deepEqual(answer, a('127.0.0.2'))
    assert.equal((await other).kind, 'nxdomain')
    const s = dns.stats()
    assert.equal(s.queries, 51)
    assert.equal(s.coalesced, 49)
    assert.equal(s.answers.records, 50)
  })

  it('a caller whose signal aborts is rejected with its reason; the others still get the answer', async () => {
    const up = manualUpstream()
    const dns = createDnsCache(up.resolver)
    const controller = new AbortController()
    const leaving = dns.query('x.test', 'A', { signal: controller.signal })
    const staying = dns.query('x.test', 'A')
    const reason = new Error('client went away')
    controller.abort(reason)
    await assert.rejects(leaving, (e) => e === reason)
    assert.equal(up.asked[0]?.signal?.aborted, false)
    up.asked[0]?.answer(a('192.0.2.1'))
    assert.deepEqual(await staying, a('192.0.2.1'))
    assert.equal(dns.stats().aborted, 1)
  })

  it('when every caller has gone the query is abandoned, and the next caller asks anew', async () => {
    const up = manualUpstream()
    const dns = createDnsCache(up.resolver)
    const controller = new AbortController()
    const first = dns.query('x.test', 'A', { signal: controller.signal })
    controller.abort(new Error('gone'))
    await assert.rejects(first)
    assert.equal(up.asked[0]?.signal?.aborted, true)
    const next = dns.query('x.test', 'A')
    assert.equal(up.asked.length, 2)
    up.asked[1]?.answer(a('192.0.2.9'))
    assert.deepEqual(await next, a('192.0.2.9'))
  })

  it('a signal already aborted rejects without asking', async () => {
    const up = manualUpstream()
    const dns = createDnsCache(up.resolver)
    const reason = new Error('already')
    await assert.rejects(dns.query('x.test', 'A', { signal: AbortSignal.abort(reason) }), (e) => e === reason)
    assert.equal(up.asked.length, 0)
  })

  it("a caller's own shorter deadline answers timeout for that caller only", async () => {
    const up = manualUpstream()
    const dns = createDnsCache(up.resolver)
    const impatient = dns.query('x.test', 'A', { timeoutMs: 1 })
    const patient = dns.query('x.test', 'A')
    assert.deepEqual(await impatient, { kind: 'timeout' })
    up.asked[0]?.answer(a('192.0.2.1'))
    assert.deepEqual(await patient, a('192.0.2.1'))
    assert.equal(dns.stats().answers.timeout, 1)
  })

  it('a name that cannot exist is NXDOMAIN without asking', async () => {
    const up = manualUpstream()
    const dns = createDnsCache(up.resolver)
    assert.deepEqual(await dns.query('a..test', 'A'), { kind: 'nxdomain', ttl: 0 })
    assert.equal(up.asked.length, 0)
  })
})
