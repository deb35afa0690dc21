/**
 * The store: shared state for plugins that remember (greylisting, karma, rate limits,
 * connection counts), as one small key-value contract with TTLs, atomic counters,
 * compare-and-set and sliding-window hit counters. Implementations: memory (tests), SQLite
 * (the worker processes of one machine), Redis (several machines).
 *
 * Values are strings (callers use JSON). A store that cannot answer (Redis down, SQLite
 * locked past its busy timeout, disk full) rejects with `StoreUnavailable` within a bounded
 * time, so the calling plugin's declared failure policy (defer or pass) applies. Data a store
 * cannot read (a non-number where a counter is expected, a foreign Redis type) is absent.
 */

export interface WriteOptions {
  /** Time to live in milliseconds (a positive integer); omitted: the entry does not expire. */
  readonly ttlMs?: number | undefined
}

export interface StoreEntry {
  readonly key: string
  readonly value: string
  /** Epoch milliseconds; undefined: no expiry. */
  readonly expiresAt: number | undefined
}

export interface LeaseResult {
  /** Whether the holder holds its lease now (false: the set was full). */
  readonly held: boolean
  /** Live leases in the set, the holder's included when held. */
  readonly count: number
}

export interface Store {
  /** The value, or undefined when the key is absent or expired. */
  get(key: string): Promise<string | undefined>
  /** Sets the value; the TTL replaces any earlier one (none given: no expiry). */
  set(key: string, value: string, opts?: WriteOptions): Promise<void>
  delete(key: string): Promise<void>
  /**
   * Adds `by` (an integer, default 1) and returns the new value. A missing key, or one whose
   * value is not an integer, starts at 0 and gets the TTL; an existing counter keeps its own.
   */
  incr(key: string, by?: number, opts?: WriteOptions): Promise<number>
  /**
   * Sets `value` only if the current value is `expected` (undefined: the key is absent).
   * True when set; the TTL replaces any earlier one.
   * @example
   * // greylisting: the first sighting wins; a concurrent second one sees false
   * if (await store.compareAndSet(triplet, undefined, JSON.stringify({ first: now }), { ttlMs })) ...
   */
  compareAndSet(key: string, expected: string | undefined, value: string, opts?: WriteOptions): Promise<boolean>
  /**
   * Records a hit in a sliding window of `windowMs` and returns the number of hits in the
   * window, this one included. The count is the sliding-window-counter estimate: the hits of
   * the current fixed window plus those of the previous one weighted by how much of it the
   * sliding window still covers (rounded down). Constant space per key, whatever the rate.
   * @example
   * if ((await store.hit(`conn:${ip}`, 60_000)) > 30) return defer(451, '4.7.1', 'Too many connections')
   */
  hit(key: string, windowMs: number): Promise<number>
  /**
   * Takes or renews the lease `holder` (printable ASCII, no spaces, at most 200 characters) in the lease set
   * `key` for `ttlMs`, unless the set already holds `limit` live leases of others: then nothing
   * changes and `held` is false. A holder renews before its lease runs out and releases it when
   * done; one that vanished without releasing (a crashed process, a lost node) drops out when
   * its lease expires. So counts of open connections across processes and nodes heal by
   * themselves. The set's leases all live in one key (one Redis Cluster slot).
   * @example
   * const { held, count } = await store.lease(`conn:${ip}`, connectionId, 60_000, maxPerIp)
   * if (!held) return defer(421, '4.7.0', `Too many connections from ${ip}`)
   */
  lease(key: string, holder: string, ttlMs: number, limit?: number): Promise<LeaseResult>
  /** Gives the lease back; the set's count drops at once. Releasing a lease not held does nothing. */
  releaseLease(key: string, holder: string): Promise<void>
  /** Live entries whose key starts with `prefix`, at most `limit` (admin commands: karma list). */
  list(prefix: string, limit: number): AsyncIterable<StoreEntry>
  /** A view whose keys are prefixed with `prefix` and `:`, e.g. `store.scope('greylist')`. */
  scope(prefix: string): Store
  /** Closes the store. On a scoped view this does nothing: the store belongs to its opener. */
  close(): Promise<void>
}

/**
 * The store cannot answer now (connection down, command timed out, database locked or full).
 * A plugin lets it propagate (its `onFailure` policy then applies) or catches it to decide.
 */
export class StoreUnavailable extends Error {
  readonly code = 'SMTPD_ERR_STORE_UNAVAILABLE'

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreUnavailable'
  }
}

/**
 * The same keys as `store`, with a `close()` that does nothing: what the process hands to
 * plugins and runtimes, so that only the opener can close the store (it outlives reloads).
 */
export function borrowedStore(store: Store): Store {
  return {
    get: (key) => store.get(key),
    set: (key, value, opts) => store.set(key, value, opts),
    delete: (key) => store.delete(key),
    incr: (key, by, opts) => store.incr(key, by, opts),
    compareAndSet: (key, expected, value, opts) => store.compareAndSet(key, expected, value, opts),
    hit: (key, windowMs) => store.hit(key, windowMs),
    lease: (key, holder, ttlMs, limit) => store.lease(key, holder, ttlMs, limit),
    releaseLease: (key, holder) => store.releaseLease(key, holder),
    list: (prefix, limit) => store.list(prefix, limit),
    scope: (prefix) => store.scope(prefix),
    close: () => Promise.resolve(),
  }
}

/** What each implementation provides; `scope` and argument checks are added by `storeOver`. */
export type StoreBackend = Omit<Store, 'scope'>

/** The Store over a backend: argument checks, and scoped views sharing the backend. */
export function storeOver(backend: StoreBackend): Store {
  return view(backend, '', true)
}

function view(backend: StoreBackend, prefix: string, owner: boolean): Store {
  const k = (key: string) => prefix + checkKey(key)
  return {
    get: (key) => backend.get(k(key)),
    set: (key, value, opts) => backend.set(k(key), checkValue(value), checkTtl(opts)),
    delete: (key) => backend.delete(k(key)),
    incr: (key, by = 1, opts) => backend.incr(k(key), checkIncrement(by), checkTtl(opts)),
    compareAndSet: (key, expected, value, opts) =>
      backend.compareAndSet(
        k(key),
        expected === undefined ? undefined : checkValue(expected),
        checkValue(value),
        checkTtl(opts),
      ),
    hit: (key, windowMs) => backend.hit(k(key), checkWindow(windowMs)),
    lease: (key, holder, ttlMs, limit) =>
      backend.lease(k(key), checkHolder(holder), checkLeaseTtl(ttlMs), checkLeaseLimit(limit)),
    releaseLease: (key, holder) => backend.releaseLease(k(key), checkHolder(holder)),
    list: (listPrefix, limit) => unprefixed(backend.list(prefix + listPrefix, checkLimit(limit)), prefix.length),
    scope: (name) => view(backend, `${prefix}${checkKey(name)}:`, false),
    close: () => (owner ? backend.close() : Promise.resolve()),
  }
}

async function* unprefixed(entries: AsyncIterable<StoreEntry>, cut: number): AsyncIterable<StoreEntry> {
  for await (const e of entries) yield cut === 0 ? e : { ...e, key: e.key.slice(cut) }
}

// Argument errors are bugs in the calling plugin, not outages: they throw synchronously.
function checkKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('store key must be a non-empty string')
  return key
}

function checkValue(value: string): string {
  if (typeof value !== 'string') throw new TypeError('store values are strings (use JSON for structures)')
  return value
}

function checkTtl(opts: WriteOptions | undefined): WriteOptions | undefined {
  const ttl = opts?.ttlMs
  if (ttl !== undefined && !(Number.isSafeInteger(ttl) && ttl > 0)) {
    throw new RangeError(`store ttlMs must be a positive integer, got ${ttl}`)
  }
  return opts
}

function checkIncrement(by: number): number {
  if (!Number.isSafeInteger(by)) throw new RangeError(`store incr needs an integer, got ${by}`)
  return by
}

function checkWindow(windowMs: number): number {
  if (!(Number.isSafeInteger(windowMs) && windowMs > 0)) {
    throw new RangeError(`store hit window must be a positive integer of milliseconds, got ${windowMs}`)
  }
  return windowMs
}

function checkHolder(holder: string): string {
  if (typeof holder !== 'string' || !/^[!-~]{1,200}$/.test(holder)) {
    throw new TypeError('store lease holder must be 1 to 200 printable ASCII characters, no spaces')
  }
  return holder
}

function checkLeaseTtl(ttlMs: number): number {
  if (!(Number.isSafeInteger(ttlMs) && ttlMs > 0))
    throw new RangeError(`store lease ttlMs must be positive, got ${ttlMs}`)
  return ttlMs
}

function checkLeaseLimit(limit: number | undefined): number | undefined {
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) {
    throw new RangeError(`store lease limit must be a positive integer, got ${limit}`)
  }
  return limit
}

function checkLimit(limit: number): number {
  if (!(Number.isSafeInteger(limit) && limit > 0))
    throw new RangeError(`store list limit must be positive, got ${limit}`)
  return limit
}
