/**
 * A real redis-server taken away in the middle of a run: operations fail fast with
 * StoreUnavailable (never queue), and the same store works again once Redis is back on the
 * same port, without a restart. Bounds below are generous (a loaded 2-core machine); what
 * they catch is an operation that hangs or queues until Redis returns.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type RedisServer, startRedis, startRedisSentinel } from '../../test/peers/redis.ts'
import { redisStore } from './redis.ts'
import { parseStoreSpec } from './spec.ts'
import { type Store, StoreUnavailable } from './store.ts'

const timeoutMs = 300
/**
 * How long a failing operation may take at most. Redis stays down meanwhile, so an operation
 * that queued until it returned would never settle: any finite bound catches that, and a wide
 * one does not fail on a loaded machine.
 */
const promptMs = timeoutMs + 15_000

const open = async (url: string, warnings: string[]) => {
  const spec = parseStoreSpec(`${url} timeout=${timeoutMs}ms connect_timeout=300ms`, { file: 'test' }, '/')
  if (spec.kind !== 'redis') throw new Error('not a redis spec')
  return redisStore(spec, { onWarning: (m) => warnings.push(m) })
}

/** Settles the operation and says how it ended and how long it took. */
async function timed(op: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const t0 = performance.now()
  try {
    await op()
    return { ms: performance.now() - t0, error: undefined }
  } catch (error) {
    return { ms: performance.now() - t0, error }
  }
}

async function failsFast(op: () => Promise<unknown>, label: string): Promise<void> {
  const r = await timed(op)
  assert.ok(r.error instanceof StoreUnavailable, `${label}: ${String(r.error)}`)
  assert.ok(r.ms < promptMs, `${label} took ${Math.round(r.ms)} ms`)
}

/** Waits (bounded) until the store answers again. */
async function recovers(store: Store, withinMs = 10_000): Promise<number> {
  for (let i = 0; i < withinMs / 50; i++) {
    const r = await timed(() => store.incr('after-outage'))
    if (r.error === undefined) return i
    assert.ok(r.error instanceof StoreUnavailable, String(r.error))
    await sleep(50)
  }
  throw new Error(`the store did not reconnect within ${withinMs} ms`)
}

describe('redis store outage', () => {
  let redis: RedisServer
  before(async () => {
    redis = await startRedis()
  })
  after(() => redis.close())

  it('redis stopped mid-run: operations fail fast; restarted on its port: the store reconnects', async () => {
    const warnings: string[] = []
    const store = await open(redis.url, warnings)
    assert.equal(await store.incr('before'), 1)

    // Load in flight while Redis goes away: every operation settles, none hangs.
    const load = Array.from({ length: 200 }, (_, i) => timed(() => store.incr(`load-${i % 10}`)))
    await redis.stop()
    const settled = await Promise.all(load)
    assert.ok(settled.every((r) => r.error === undefined || r.error instanceof StoreUnavailable))

    await failsFast(() => store.get('k'), 'get')
    await failsFast(() => store.set('k', 'v', { ttlMs: 1000 }), 'set')
    await failsFast(() => store.incr('k'), 'incr')
    await failsFast(() => store.compareAndSet('k', undefined, 'v'), 'compareAndSet')
    await failsFast(() => store.hit('k', 60_000), 'hit')
    await failsFast(() => store.lease('k', 'h', 60_000, 3), 'lease')
    await failsFast(() => store.releaseLease('k', 'h'), 'releaseLease')
    await failsFast(async () => {
      for await (const _ of store.list('', 10)) break
    }, 'list')

    await redis.start()
    await recovers(store)
    assert.equal(await store.incr('after-outage-2'), 1, 'a fresh (unpersisted) Redis, same store object')
    assert.deepEqual(
      warnings.map((w) => w.replace(/unavailable: .*; /, 'unavailable: …; ')),
      [`store ${redis.url} unavailable: …; reconnecting`, `store ${redis.url} reconnected`],
    )
    await store.close()
  })

  it('redis hanging (SIGSTOP): commands in flight reject at their deadline; SIGCONT: it answers again', async () => {
    const store = await open(redis.url, [])
    assert.equal(await store.incr('hang'), 1)
    redis.pause()
    try {
      await failsFast(() => store.incr('hang'), 'incr on a hung server')
      const burst = await Promise.all(Array.from({ length: 50 }, () => timed(() => store.get('hang'))))
      for (const r of burst) assert.ok(r.error instanceof StoreUnavailable && r.ms < promptMs, String(r.error))
    } finally {
      redis.resume()
    }
    await recovers(store)
    await store.close()
  })

  it('redis down at start: the store opens, fails fast, and connects when redis comes up', async () => {
    await redis.stop()
    const warnings: string[] = []
    const store = await open(redis.url, warnings)
    await failsFast(() => store.get('k'), 'get before redis is up')
    await redis.start()
    await recovers(store)
    assert.match(warnings[0] ?? '', /unavailable: .*; reconnecting$/)
    await store.close()
  })

  it('close() ends a store whose redis is down, without waiting for it', async () => {
    await redis.stop()
    const store = await open(redis.url, [])
    const r = await timed(() => store.close())
    assert.equal(r.error, undefined)
    assert.ok(r.ms < promptMs, `close took ${Math.round(r.ms)} ms`)
    await redis.start()
  })

  it('sentinel fail-over: the master dies, the replica is promoted, the store follows it', async () => {
    const s = await startRedisSentinel('failover', 1000)
    try {
      const store = await open(`redis-sentinel://127.0.0.1:${s.sentinel.port}/failover`, [])
      await store.set('kept', 'before the fail-over')
      // Bounded waits: the replica has the write, and the Sentinel knows the replica.
      for (let i = 0; i < 100 && (await s.replica.cli('GET', 'qtsmtpd:kept')).trim() !== 'before the fail-over'; i++) {
        await sleep(50)
      }
      for (let i = 0; i < 200 && !/\bip\b/.test(await s.sentinel.cli('SENTINEL', 'replicas', 'failover')); i++) {
        await sleep(50)
      }
      await s.master.stop()
      await recovers(store, 30_000)
      assert.equal(await store.get('kept'), 'before the fail-over')
      assert.match(await s.replica.cli('ROLE'), /^master/)
      await store.close()
    } finally {
      await s.close()
    }
  })
})
