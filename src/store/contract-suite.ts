/**
 * The behaviour every store implementation must have, as one suite that each implementation's
 * test file runs against itself: TTLs, counters and compare-and-set under concurrency (through
 * two handles on the same data), sliding windows, scopes, listing, and garbage in the data.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type Store, StoreUnavailable } from './store.ts'

/** A clock the tests move; it starts on a minute boundary so window arithmetic is readable. */
export class FakeClock {
  t = 1_700_000_040_000
  readonly now = (): number => this.t
  advance(ms: number): void {
    this.t += ms
  }
}

/** Text that is not a counter or a window: readable by get, absent to incr and hit. */
export const textGarbage = { word: 'twelve', decimal: '1.5', exponent: '1e3', 'too long': '1'.repeat(20) } as const

export interface StoreHarness {
  /** Two handles on one fresh, empty data set (two connections, or the same object in memory). */
  open(clock: FakeClock): Promise<{ store: Store; other: Store }>
  /** Lets TTLs pass: moves the fake clock, and also waits for stores whose TTLs run on a real clock. */
  ttlPasses(clock: FakeClock, ms: number): Promise<void>
  /** The clock TTL expiry times are on (the fake one, or the real one). */
  ttlNow(clock: FakeClock): number
  /** Ways to put data the store did not write under a key (root scope). */
  readonly garbage: Readonly<Record<string, (key: string) => Promise<void>>>
  /** Garbage kinds that `get` reads back as a string (the rest read as absent). */
  readonly stringGarbage: readonly string[]
}

export function storeContract(name: string, harness: StoreHarness): void {
  describe(`store contract: ${name}`, () => {
    const clock = new FakeClock()
    let store: Store
    let other: Store
    before(async () => {
      ;({ store, other } = await harness.open(clock))
    })
    after(async () => {
      await other.close()
      await store.close()
    })
    let n = 0
    /** A key no other test uses (the suite shares one data set). */
    const fresh = (label: string) => `${label}-${++n}`

    it('set, get, overwrite and delete a value; a missing key is undefined', async () => {
      const k = fresh('plain')
      assert.equal(await store.get(k), undefined)
      await store.set(k, '{"first":1}')
      assert.equal(await other.get(k), '{"first":1}')
      await store.set(k, 'é ✓ \u0000 end')
      assert.equal(await store.get(k), 'é ✓ \u0000 end')
      await store.set(k, '')
      assert.equal(await store.get(k), '')
      await store.delete(k)
      assert.equal(await store.get(k), undefined)
      await store.delete(k)
    })

    it('an entry expires after its TTL; a later set without TTL makes it permanent', async () => {
      const [short, long, reset] = [fresh('ttl'), fresh('ttl'), fresh('ttl')]
      await store.set(short, 'a', { ttlMs: 150 })
      await store.set(long, 'b', { ttlMs: 3_600_000 })
      await store.set(reset, 'c', { ttlMs: 150 })
      await store.set(reset, 'c2')
      await harness.ttlPasses(clock, 300)
      assert.equal(await store.get(short), undefined)
      assert.equal(await store.get(long), 'b')
      assert.equal(await store.get(reset), 'c2')
    })

    it('incr starts a missing key at 0 with the TTL, and keeps an existing counter’s TTL', async () => {
      const k = fresh('counter')
      assert.equal(await store.incr(k), 1)
      assert.equal(await store.incr(k, 5), 6)
      assert.equal(await store.incr(k, -10), -4)
      assert.equal(await store.get(k), '-4')
      const t = fresh('counter')
      assert.equal(await store.incr(t, 1, { ttlMs: 150 }), 1)
      assert.equal(await store.incr(t, 1, { ttlMs: 3_600_000 }), 2, 'the second TTL does not replace the first')
      await harness.ttlPasses(clock, 300)
      assert.equal(await store.get(t), undefined)
      assert.equal(await store.incr(t), 1, 'an expired counter starts again')
    })

    it('incr is atomic: 200 concurrent increments through two handles give 1..200', async () => {
      const k = fresh('race')
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? store : other).incr(k, 1, { ttlMs: 3_600_000 })),
      )
      assert.deepEqual(
        results.sort((a, b) => a - b),
        Array.from({ length: 200 }, (_, i) => i + 1),
      )
      assert.equal(await store.get(k), '200')
    })

    it('compareAndSet sets only over the expected value (undefined: absent)', async () => {
      const k = fresh('cas')
      assert.equal(await store.compareAndSet(k, 'x', 'y'), false)
      assert.equal(await store.get(k), undefined)
      assert.equal(await store.compareAndSet(k, undefined, 'v1', { ttlMs: 150 }), true)
      assert.equal(await store.compareAndSet(k, undefined, 'v2'), false)
      assert.equal(await store.compareAndSet(k, 'v0', 'v2'), false)
      assert.equal(await store.get(k), 'v1')
      await harness.ttlPasses(clock, 300)
      assert.equal(await store.compareAndSet(k, 'v1', 'v2'), false, 'an expired value is absent')
      assert.equal(await store.compareAndSet(k, undefined, 'v3'), true)
      assert.equal(await store.compareAndSet(k, 'v3', 'v4'), true)
      assert.equal(await store.get(k), 'v4')
    })

    it('compareAndSet races: of 50 concurrent first sightings exactly one wins', async () => {
      const k = fresh('first')
      const wins = await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? store : other).compareAndSet(k, undefined, `w${i}`)),
      )
      assert.equal(wins.filter(Boolean).length, 1)
      assert.equal(await store.get(k), `w${wins.indexOf(true)}`)
    })

    it('compareAndSet supports optimistic updates: 20 writers × 5 updates lose none', async () => {
      const k = fresh('json')
      await store.set(k, JSON.stringify({ n: 0 }))
      const writer = async (s: Store) => {
        for (let done = 0; done < 5; ) {
          const cur = (await s.get(k))!
          const next = JSON.stringify({ n: (JSON.parse(cur) as { n: number }).n + 1 })
          if (await s.compareAndSet(k, cur, next)) done++
        }
      }
      await Promise.all(Array.from({ length: 20 }, (_, i) => writer(i % 2 ? store : other)))
      assert.deepEqual(JSON.parse((await store.get(k))!), { n: 100 })
    })

    it('hit counts a sliding window: current window plus the covered part of the previous one', async () => {
      const k = fresh('window')
      const w = 60_000
      clock.t = Math.ceil(clock.t / w) * w
      assert.deepEqual([await store.hit(k, w), await store.hit(k, w), await other.hit(k, w)], [1, 2, 3])
      clock.advance(30_000)
      assert.equal(await store.hit(k, w), 4, 'same fixed window')
      clock.advance(30_000)
      assert.equal(await store.hit(k, w), 5, 'new window; the previous one still fully covered: 1 + 4')
      clock.advance(30_000)
      assert.equal(await store.hit(k, w), 4, 'half covered: 2 + floor(4 × 0.5)')
      clock.advance(60_000)
      assert.equal(await store.hit(k, w), 2, '1 + floor(2 × 0.5)')
      clock.advance(120_000)
      assert.equal(await store.hit(k, w), 1, 'two windows later nothing is left')
      assert.equal(await store.hit(fresh('window'), w), 1, 'keys count separately')
    })

    it('hit is atomic: 100 concurrent hits through two handles count 1..100', async () => {
      const k = fresh('burst')
      const counts = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? store : other).hit(k, 3_600_000)))
      assert.deepEqual(
        counts.sort((a, b) => a - b),
        Array.from({ length: 100 }, (_, i) => i + 1),
      )
    })

    it('lease: holders count until released or expired; a full set refuses newcomers but renews holders', async () => {
      const k = fresh('leases')
      assert.deepEqual(await store.lease(k, 'node-a:1', 150), { held: true, count: 1 })
      assert.deepEqual(await other.lease(k, 'node-b:1', 3_600_000, 3), { held: true, count: 2 })
      assert.deepEqual(await store.lease(k, 'node-a:2', 3_600_000, 3), { held: true, count: 3 })
      assert.deepEqual(await other.lease(k, 'node-b:2', 3_600_000, 3), { held: false, count: 3 }, 'full')
      assert.deepEqual(await store.lease(k, 'node-a:2', 3_600_000, 3), { held: true, count: 3 }, 'a renewal')
      assert.deepEqual(
        await store.lease(k, 'node-a:2', 3_600_000, 1),
        { held: true, count: 3 },
        'even over a lower limit',
      )
      await store.releaseLease(k, 'node-a:2')
      await store.releaseLease(k, 'never-held')
      assert.deepEqual(await other.lease(k, 'node-b:2', 3_600_000, 3), { held: true, count: 3 })
      await harness.ttlPasses(clock, 300)
      assert.deepEqual(
        await other.lease(k, 'node-b:3', 3_600_000, 3),
        { held: true, count: 3 },
        'the holder that never renewed (a crashed process) dropped out',
      )
      for (const h of ['node-b:1', 'node-b:2', 'node-b:3']) await other.releaseLease(k, h)
      assert.equal(await store.get(k), undefined, 'an empty set leaves no key behind')
      const short = fresh('leases')
      await store.lease(short, 'only', 150)
      await harness.ttlPasses(clock, 300)
      assert.equal(await store.get(short), undefined, 'the key expires with its last lease')
    })

    it('lease is atomic: of 40 concurrent holders through two handles, exactly the limit get in', async () => {
      const k = fresh('lease-race')
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? store : other).lease(k, `h${i}`, 3_600_000, 7)),
      )
      assert.equal(results.filter((r) => r.held).length, 7)
      assert.ok(results.every((r) => r.count <= 7))
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.releaseLease(k, `h${i}`)))
      assert.deepEqual(await store.lease(k, 'after', 3_600_000, 7), { held: true, count: 1 })
    })

    it('scopes isolate keys, nest, list without their prefix, and do not close the store', async () => {
      const a = store.scope('a')
      const b = store.scope('b')
      await a.set('k', 'from a')
      await b.set('k', 'from b')
      await a.scope('inner').set('k', 'nested')
      assert.equal(await a.get('k'), 'from a')
      assert.equal(await b.get('k'), 'from b')
      assert.equal(await store.get('a:k'), 'from a')
      assert.equal(await other.get('a:inner:k'), 'nested')
      assert.equal(await a.incr('n'), 1)
      assert.equal(await b.incr('n'), 1)
      const listed = await collect(a.list('', 100))
      assert.deepEqual(listed.map((e) => [e.key, e.value]).sort(), [
        ['inner:k', 'nested'],
        ['k', 'from a'],
        ['n', '1'],
      ])
      await a.close()
      assert.equal(await b.get('k'), 'from b')
    })

    it('list gives live entries under a prefix, bounded by the limit, with their expiry', async () => {
      const s = store.scope(fresh('list'))
      for (let i = 0; i < 7; i++) await s.set(`user:${i}`, `v${i}`)
      await s.set('user:temp', 't', { ttlMs: 150 })
      await s.set('user:ttl', 'kept', { ttlMs: 3_600_000 })
      await s.set('other', 'x')
      await harness.ttlPasses(clock, 300)
      const all = await collect(s.list('user:', 100))
      assert.deepEqual(all.map((e) => e.key).sort(), [...Array.from({ length: 7 }, (_, i) => `user:${i}`), 'user:ttl'])
      assert.equal(all.find((e) => e.key === 'user:1')?.expiresAt, undefined)
      const ttl = all.find((e) => e.key === 'user:ttl')?.expiresAt ?? 0
      assert.ok(Math.abs(ttl - (harness.ttlNow(clock) + 3_600_000)) < 60_000, `expiresAt ${ttl}`)
      assert.equal((await collect(s.list('user:', 3))).length, 3)
      assert.deepEqual(await collect(s.list('nothing', 10)), [])
    })

    for (const [kind, plant] of Object.entries(harness.garbage)) {
      it(`garbage (${kind}) is absent to counters, windows and compare-and-set, never a crash`, async () => {
        const [g, c, h, l, s] = [fresh('g'), fresh('g'), fresh('g'), fresh('g'), fresh('g')]
        for (const k of [g, c, h, l, s]) await plant(k)
        const readable = harness.stringGarbage.includes(kind)
        assert.equal((await store.get(g)) === undefined, !readable)
        assert.equal(await store.incr(g, 3), 3)
        assert.equal(await store.get(g), '3')
        assert.equal(await store.hit(h, 60_000), 1)
        assert.deepEqual(await store.lease(s, 'me', 60_000, 1), { held: true, count: 1 })
        assert.equal(await store.compareAndSet(c, undefined, 'mine'), !readable)
        const listed = await collect(store.list(l, 10))
        assert.equal(listed.length, readable ? 1 : 0)
      })
    }

    it('argument mistakes throw at once; they are not outages', () => {
      assert.throws(() => store.set('k', 'v', { ttlMs: 0 }), RangeError)
      assert.throws(() => store.set('k', 'v', { ttlMs: 1.5 }), RangeError)
      assert.throws(() => store.incr('k', 0.5), RangeError)
      assert.throws(() => store.hit('k', 0), RangeError)
      assert.throws(() => store.get(''), TypeError)
      assert.throws(() => store.list('', 0), RangeError)
      assert.throws(() => store.lease('k', 'two words', 1000), TypeError)
      assert.throws(() => store.lease('k', 'h', 0), RangeError)
      assert.throws(() => store.lease('k', 'h', 1000, 0), RangeError)
    })

    it('a closed store rejects with StoreUnavailable', async () => {
      const { store: s, other: o } = await harness.open(clock)
      await s.close()
      await assert.rejects(s.get('k'), StoreUnavailable)
      await assert.rejects(s.incr('k'), StoreUnavailable)
      await assert.rejects(s.lease('k', 'h', 1000), StoreUnavailable)
      await assert.rejects(collect(s.list('', 1)), StoreUnavailable)
      await o.close()
    })
  })
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const i of items) out.push(i)
  return out
}
