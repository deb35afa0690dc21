/**
 * The in-memory store: one process, no persistence. For tests (with an injectable clock, so
 * TTLs and windows are tested without waiting) and single-process runs that need nothing
 * kept across restarts. Expired entries are invisible at once and removed on access and by a
 * sweep every `sweepEvery` writes, so memory stays bounded by the live entries.
 */

import {
  type Store,
  type StoreBackend,
  type StoreEntry,
  StoreUnavailable,
  storeOver,
  type WriteOptions,
} from './store.ts'
import { dropLease, type LeaseUpdate, parseCounter, recordHit, takeLease, windowTtl } from './values.ts'

export interface MemoryStoreOptions {
  /** Epoch milliseconds; tests pass a fake clock. */
  readonly now?: () => number
  /** Writes between two sweeps of expired entries (default 1000). */
  readonly sweepEvery?: number
}

interface Slot {
  value: string
  expiresAt: number | undefined
}

export function memoryStore(opts: MemoryStoreOptions = {}): Store {
  const now = opts.now ?? Date.now
  const sweepEvery = opts.sweepEvery ?? 1000
  const slots = new Map<string, Slot>()
  let writes = 0
  let closed = false

  const live = (key: string, at = now()): Slot | undefined => {
    const slot = slots.get(key)
    if (slot?.expiresAt !== undefined && slot.expiresAt <= at) {
      slots.delete(key)
      return undefined
    }
    return slot
  }
  const write = (key: string, value: string, expiresAt: number | undefined) => {
    slots.set(key, { value, expiresAt })
    if (++writes % sweepEvery === 0) {
      const at = now()
      for (const [k, s] of slots) if (s.expiresAt !== undefined && s.expiresAt <= at) slots.delete(k)
    }
  }
  const saveLeases = (key: string, u: LeaseUpdate) => {
    if (u.state === undefined) slots.delete(key)
    else write(key, u.state, u.expiresAt)
    return { held: u.held, count: u.count }
  }
  const expiry = (o: WriteOptions | undefined, at = now()) => (o?.ttlMs === undefined ? undefined : at + o.ttlMs)
  // Async so that a closed store rejects instead of throwing, like the real ones.
  const op = async <T>(fn: () => T): Promise<T> => {
    if (closed) throw new StoreUnavailable('memory store: closed')
    return fn()
  }

  const backend: StoreBackend = {
    get: (key) => op(() => live(key)?.value),
    set: (key, value, o) => op(() => write(key, value, expiry(o))),
    delete: (key) =>
      op(() => {
        slots.delete(key)
      }),
    incr: (key, by = 1, o) =>
      op(() => {
        const slot = live(key)
        const n = parseCounter(slot?.value)
        if (slot === undefined || n === undefined) {
          write(key, String(by), expiry(o))
          return by
        }
        write(key, String(n + by), slot.expiresAt)
        return n + by
      }),
    compareAndSet: (key, expected, value, o) =>
      op(() => {
        if (live(key)?.value !== expected) return false
        write(key, value, expiry(o))
        return true
      }),
    hit: (key, windowMs) =>
      op(() => {
        const at = now()
        const h = recordHit(live(key, at)?.value, at, windowMs)
        write(key, h.state, at + windowTtl(windowMs))
        return h.count
      }),
    lease: (key, holder, ttlMs, limit) =>
      op(() => {
        const at = now()
        return saveLeases(key, takeLease(live(key, at)?.value, holder, at, ttlMs, limit))
      }),
    releaseLease: (key, holder) =>
      op(() => {
        const at = now()
        const slot = live(key, at)
        if (slot !== undefined) saveLeases(key, dropLease(slot.value, holder, at))
      }),
    list: (prefix, limit) => listLive(slots, prefix, limit, now(), closed),
    close: async () => {
      closed = true
      slots.clear()
    },
  }
  return storeOver(backend)
}

async function* listLive(
  slots: Map<string, Slot>,
  prefix: string,
  limit: number,
  at: number,
  closed: boolean,
): AsyncIterable<StoreEntry> {
  if (closed) throw new StoreUnavailable('memory store: closed')
  const keys = [...slots.keys()].filter((k) => k.startsWith(prefix)).sort()
  let n = 0
  for (const key of keys) {
    const s = slots.get(key)
    if (s === undefined || (s.expiresAt !== undefined && s.expiresAt <= at)) continue
    yield { key, value: s.value, expiresAt: s.expiresAt }
    if (++n >= limit) return
  }
}
