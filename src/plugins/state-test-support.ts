/**
 * For the tests of plugins that remember (greylisting, karma, limit, hosts_allow): the same
 * scenario on each kind of store, the memory store, an SQLite file and a real redis-server on
 * loopback, all on the test's clock. Test-only; not part of the public API.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type RedisServer, startRedis } from '../../test/peers/redis.ts'
import type { Clock } from '../clock/index.ts'
import { memoryStore, parseStoreSpec, redisStore, type Store, StoreUnavailable, sqliteStore } from '../store/index.ts'

export type StoreKind = 'memory' | 'sqlite' | 'redis'
export const storeKinds: readonly StoreKind[] = ['memory', 'sqlite', 'redis']

/** Opens stores of every kind for one test file; `close()` in `after`. */
export class TestStores {
  #redis: RedisServer | undefined
  #dir: string | undefined
  #opened: Store[] = []

  /** A fresh, empty store of `kind` on `clock` (its own Redis prefix, its own SQLite file); closed by close(). */
  async open(kind: StoreKind, clock: Clock): Promise<Store> {
    const store = await this.#open(kind, clock, this.#opened.length + 1)
    this.#opened.push(store)
    return store
  }

  async #open(kind: StoreKind, clock: Clock, n: number): Promise<Store> {
    const now = () => clock.now()
    switch (kind) {
      case 'memory':
        return memoryStore({ now })
      case 'sqlite':
        this.#dir ??= mkdtempSync(join(tmpdir(), 'qtsmtpd-state-test-'))
        return sqliteStore({ file: join(this.#dir, `state-${n}.db`), now, sweepIntervalMs: 0 })
      case 'redis': {
        this.#redis ??= await startRedis()
        const spec = parseStoreSpec(`${this.#redis.url} prefix=t${n}: timeout=5s`, { file: 'test' }, '/')
        if (spec.kind !== 'redis') throw new Error('not a redis spec')
        return redisStore(spec, { now })
      }
    }
  }

  /** The redis-server behind the `redis` kind (started on first use). */
  async redis(): Promise<RedisServer> {
    this.#redis ??= await startRedis()
    return this.#redis
  }

  async close(): Promise<void> {
    for (const s of this.#opened) await s.close()
    await this.#redis?.close()
    if (this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true })
  }
}

/** A store whose every operation fails as a Redis outage does. */
export function failingStore(): Store {
  const down = () => Promise.reject(new StoreUnavailable('store redis://127.0.0.1:1: connection refused'))
  const store: Store = {
    get: down,
    set: down,
    delete: down,
    incr: down,
    compareAndSet: down,
    hit: down,
    lease: down,
    releaseLease: down,
    list: async function* () {
      yield* []
      throw new StoreUnavailable('down')
    },
    scope: () => store,
    close: () => Promise.resolve(),
  }
  return store
}
