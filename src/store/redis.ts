/**
 * The Redis store, for several qtsmtpd nodes sharing state: plain GET/SET/DEL for the simple
 * operations, Lua scripts (redis-scripts.ts) for the read-modify-write ones, every key under a
 * prefix (`qtsmtpd:` unless configured). Any failure of Redis or of the connection rejects
 * with StoreUnavailable within the command deadline; the connection heals by itself.
 *
 * Window hits use this node's clock (the `now` option), so nodes' clocks should agree (NTP);
 * a node whose clock runs ahead does not reset a window another node is counting in.
 */
import { connectRedis, type RedisCommands } from './redis-client.ts'
import type { RedisSpec } from './spec.ts'
import { type Store, type StoreBackend, type StoreEntry, StoreUnavailable, storeOver } from './store.ts'

export interface RedisStoreOptions {
  readonly now?: () => number
  readonly onWarning?: (message: string) => void
}

export async function redisStore(spec: RedisSpec, opts: RedisStoreOptions = {}): Promise<Store> {
  const now = opts.now ?? Date.now
  const connection = connectRedis(spec, opts.onWarning ?? (() => undefined))
  // Wait a little for the first connection, so a healthy Redis answers the first operation;
  // an unreachable one is reported and retried, and operations fail fast meanwhile.
  let timer: NodeJS.Timeout | undefined
  await Promise.race([connection.connected, new Promise((r) => (timer = setTimeout(r, spec.connectTimeoutMs)))])
  clearTimeout(timer)

  const r = connection.commands
  const k = (key: string) => spec.prefix + key
  let closed = false
  const run = async <T>(what: string, fn: (r: RedisCommands) => Promise<T>): Promise<T> => {
    if (closed) throw new StoreUnavailable(`store ${spec.display}: closed`)
    try {
      return await fn(r)
    } catch (e) {
      throw new StoreUnavailable(`store ${spec.display}: ${what}: ${(e as Error).message || (e as Error).name}`, {
        cause: e,
      })
    }
  }
  const ttlArg = (ttlMs: number | undefined) => String(ttlMs ?? 0)

  const backend: StoreBackend = {
    get: (key) =>
      run('get', async (c) => {
        try {
          return (await c.get(k(key))) ?? undefined
        } catch (e) {
          // Another program's list or hash under our key: absent, not an outage.
          if (/^WRONGTYPE/.test((e as Error).message)) return undefined
          throw e
        }
      }),
    set: (key, value, o) =>
      run('set', async (c) => {
        await c.set(k(key), value, o?.ttlMs === undefined ? undefined : { expiration: { type: 'PX', value: o.ttlMs } })
      }),
    delete: (key) =>
      run('delete', async (c) => {
        await c.del(k(key))
      }),
    incr: (key, by = 1, o) => run('incr', (c) => c.storeIncr(k(key), String(by), ttlArg(o?.ttlMs))),
    compareAndSet: (key, expected, value, o) =>
      run('compareAndSet', (c) =>
        c.storeCompareAndSet(k(key), expected === undefined ? '0' : '1', expected ?? '', value, ttlArg(o?.ttlMs)),
      ),
    hit: (key, windowMs) => run('hit', (c) => c.storeHit(k(key), String(now()), String(windowMs))),
    lease: (key, holder, ttlMs, limit) =>
      run('lease', (c) => c.storeLease(k(key), holder, String(now()), String(ttlMs), String(limit ?? 0), 'take')),
    releaseLease: (key, holder) =>
      run('releaseLease', async (c) => {
        await c.storeLease(k(key), holder, String(now()), '1', '0', 'drop')
      }),
    list: (prefix, limit) => list(spec, r, prefix, limit, () => closed),
    close: async () => {
      if (closed) return
      closed = true
      await connection.close()
    },
  }
  return storeOver(backend)
}

async function* list(
  spec: RedisSpec,
  r: RedisCommands,
  prefix: string,
  limit: number,
  closed: () => boolean,
): AsyncIterable<StoreEntry> {
  const unavailable = (e: unknown) =>
    new StoreUnavailable(`store ${spec.display}: list: ${(e as Error).message || (e as Error).name}`, { cause: e })
  if (closed()) throw new StoreUnavailable(`store ${spec.display}: closed`)
  let yielded = 0
  try {
    // SCAN order is Redis's own; MATCH takes a glob, so the prefix's glob characters are escaped.
    for await (const keys of r.scanIterator({ MATCH: `${globEscape(spec.prefix + prefix)}*`, COUNT: 200 })) {
      const entries = await Promise.all(keys.map((key) => entry(r, key, spec.prefix.length)))
      for (const e of entries) {
        if (e === undefined) continue
        yield e
        if (++yielded >= limit) return
      }
    }
  } catch (e) {
    throw e instanceof StoreUnavailable ? e : unavailable(e)
  }
}

async function entry(r: RedisCommands, key: string, cut: number): Promise<StoreEntry | undefined> {
  const [value, ttl] = await Promise.all([r.get(key).catch(() => null), r.pTTL(key)])
  if (value === null || ttl === -2) return undefined
  return { key: key.slice(cut), value, expiresAt: ttl >= 0 ? Date.now() + ttl : undefined }
}

const globEscape = (text: string) => text.replace(/[\\*?[\]]/g, '\\$&')
