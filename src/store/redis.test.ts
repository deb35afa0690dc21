import { after, before, describe } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createClient, createCluster } from '@redis/client'
import { startRedis, startRedisCluster, startRedisSentinel } from '../../test/peers/redis.ts'
import { storeContract, textGarbage } from './contract-suite.ts'
import { redisStore } from './redis.ts'
import { parseStoreSpec } from './spec.ts'

/** Writes keys behind the store's back, to plant garbage. */
interface RawWriter {
  set(key: string, value: string): Promise<unknown>
  rPush(key: string, values: string[]): Promise<unknown>
  hSet(key: string, field: string, value: string): Promise<unknown>
  destroy(): void
}

interface Topology {
  readonly spec: string
  readonly raw: RawWriter
  close(): Promise<void>
}

/** The contract against a real Redis topology; each open() gets its own key prefix. */
function redisContract(name: string, start: () => Promise<Topology>): void {
  describe(name, () => {
    let topology: Topology
    let opened = 0
    let prefix = ''
    before(async () => {
      topology = await start()
    })
    after(async () => {
      topology.raw.destroy()
      await topology.close()
    })
    const plant = (write: (raw: RawWriter, key: string) => Promise<unknown>) => async (key: string) => {
      await write(topology.raw, prefix + key)
    }
    storeContract(name, {
      open: async (clock) => {
        prefix = `test-${++opened}:`
        const spec = parseStoreSpec(`${topology.spec} prefix=${prefix} timeout=5s`, { file: 'test' }, '/')
        if (spec.kind !== 'redis') throw new Error('not a redis spec')
        return { store: await redisStore(spec, { now: clock.now }), other: await redisStore(spec, { now: clock.now }) }
      },
      ttlPasses: async (clock, ms) => {
        clock.advance(ms)
        await sleep(ms)
      },
      ttlNow: () => Date.now(),
      garbage: {
        ...Object.fromEntries(
          Object.entries(textGarbage).map(([kind, text]) => [kind, plant((raw, k) => raw.set(k, text))]),
        ),
        'a list': plant((raw, k) => raw.rPush(k, ['1', '2'])),
        'a hash': plant((raw, k) => raw.hSet(k, 'count', '3')),
      },
      stringGarbage: Object.keys(textGarbage),
    })
  })
}

redisContract('redis', async () => {
  const r = await startRedis()
  const raw = createClient({ url: r.url })
  await raw.connect()
  return { spec: r.url, raw, close: () => r.close() }
})

redisContract('redis sentinel', async () => {
  const s = await startRedisSentinel('qtsmtpd')
  const raw = createClient({ url: s.master.url })
  await raw.connect()
  return { spec: `redis-sentinel://127.0.0.1:${s.sentinel.port}/qtsmtpd`, raw, close: () => s.close() }
})

redisContract('redis cluster', async () => {
  const c = await startRedisCluster()
  const raw = createCluster({ rootNodes: [{ url: c.nodes[0]!.url }] })
  await raw.connect()
  return {
    spec: `redis-cluster://${c.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    raw,
    close: () => c.close(),
  }
})
