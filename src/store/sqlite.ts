/**
 * The embedded store: one SQLite file (node:sqlite, WAL) shared by the worker processes of
 * one machine. Read-modify-write operations run in `BEGIN IMMEDIATE` transactions, so they are
 * atomic across processes; a lock held by another process longer than the busy timeout, an
 * I/O error or a full disk rejects with StoreUnavailable.
 *
 * Bounded without a cron job: expired entries are invisible at once, a timer sweeps them in
 * small batches (and so does every `sweepEvery`-th write), the file is capped by SQLite's
 * max_page_count, and when it is full the expired, then the soonest-expiring entries go.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite'
import { openSqliteFile } from './sqlite-file.ts'
import {
  type Store,
  type StoreBackend,
  type StoreEntry,
  StoreUnavailable,
  storeOver,
  type WriteOptions,
} from './store.ts'
import { dropLease, type LeaseUpdate, parseCounter, recordHit, takeLease, windowTtl } from './values.ts'

export interface SqliteStoreOptions {
  readonly file: string
  /** Default 250 ms; see docs/limits.md. */
  readonly busyTimeoutMs?: number
  /** Default 256 MiB. */
  readonly maxBytes?: number
  /** Default 60 s; 0 turns the timer off (sweeps on writes still happen). */
  readonly sweepIntervalMs?: number
  /** Writes between two sweeps triggered by access (default 1000). */
  readonly sweepEvery?: number
  readonly now?: () => number
  readonly onWarning?: (message: string) => void
}

export const sqliteDefaults = {
  busyTimeoutMs: 250,
  maxBytes: 256 * 1024 * 1024,
  sweepIntervalMs: 60_000,
  sweepEvery: 1000,
} as const

const sweepBatch = 500
const sqliteBusy = 5
const sqliteFull = 13

interface Row {
  value: string
  expiresAt: number | undefined
}

export function sqliteStore(opts: SqliteStoreOptions): Store {
  const now = opts.now ?? Date.now
  const warn = opts.onWarning ?? (() => undefined)
  const db = openSqliteFile(opts.file, {
    busyTimeoutMs: opts.busyTimeoutMs ?? sqliteDefaults.busyTimeoutMs,
    maxBytes: opts.maxBytes ?? sqliteDefaults.maxBytes,
    onWarning: warn,
  })
  const q = statements(db)
  const sweepEvery = opts.sweepEvery ?? sqliteDefaults.sweepEvery
  let writes = 0
  let closed = false

  const fail = (e: unknown): never => {
    if (e instanceof StoreUnavailable) throw e
    if ((e as { code?: string }).code === 'ERR_SQLITE_ERROR') {
      throw new StoreUnavailable(`sqlite store ${opts.file}: ${(e as Error).message}`, { cause: e })
    }
    throw e
  }
  const read = (key: string, at: number): Row | undefined => liveRow(q.get.get(key), at)
  const put = (key: string, value: string, expiresAt: number | undefined) => q.put.run(key, value, expiresAt ?? null)
  const saveLeases = (key: string, u: LeaseUpdate) => {
    if (u.state === undefined) q.delete.run(key)
    else put(key, u.state, u.expiresAt)
    return { held: u.held, count: u.count }
  }
  const expiry = (o: WriteOptions | undefined, at: number) => (o?.ttlMs === undefined ? undefined : at + o.ttlMs)

  /** Deletes expired entries in batches; returns how many. */
  const sweep = (maxBatches: number): number => {
    let total = 0
    for (let i = 0; i < maxBatches; i++) {
      const n = Number(q.sweep.run(now(), sweepBatch).changes)
      total += n
      if (n < sweepBatch) break
    }
    return total
  }
  /** The file is at its cap: drop the expired, then the soonest-expiring 1%. */
  const makeRoom = () => {
    if (sweep(Number.MAX_SAFE_INTEGER) > 0) return
    const count = Number((q.count.get() as { n: number }).n)
    const evicted = Number(q.evict.run(Math.max(100, Math.ceil(count / 100))).changes)
    warn(`sqlite store ${opts.file}: full (max_size); evicted ${evicted} entries that expire soonest`)
  }
  const transaction = <T>(fn: () => T): T => {
    db.exec('BEGIN IMMEDIATE')
    try {
      const result = fn()
      db.exec('COMMIT')
      return result
    } catch (e) {
      if (db.isTransaction) db.exec('ROLLBACK')
      throw e
    }
  }
  /** A write with its retry when the file is full; async so failures reject. */
  const write = async <T>(fn: () => T): Promise<T> => {
    if (closed) throw new StoreUnavailable(`sqlite store ${opts.file}: closed`)
    try {
      let result: T
      try {
        result = transaction(fn)
      } catch (e) {
        if (sqliteCode(e) !== sqliteFull) throw e
        makeRoom()
        result = transaction(fn)
      }
      if (++writes % sweepEvery === 0) sweep(1)
      return result
    } catch (e) {
      return fail(e)
    }
  }
  const reading = async <T>(fn: () => T): Promise<T> => {
    if (closed) throw new StoreUnavailable(`sqlite store ${opts.file}: closed`)
    try {
      return fn()
    } catch (e) {
      return fail(e)
    }
  }

  const timer =
    (opts.sweepIntervalMs ?? sqliteDefaults.sweepIntervalMs) > 0
      ? setInterval(() => {
          try {
            sweep(100)
            const pages = q.pages.get() as { pages: number; free: number }
            if (pages.free > pages.pages / 4) db.exec('PRAGMA incremental_vacuum')
          } catch (e) {
            // A busy or failing sweep is retried at the next tick; operations report outages.
            if (sqliteCode(e) !== sqliteBusy) warn(`sqlite store ${opts.file}: sweep failed: ${(e as Error).message}`)
          }
        }, opts.sweepIntervalMs ?? sqliteDefaults.sweepIntervalMs)
      : undefined
  timer?.unref()

  const backend: StoreBackend = {
    get: (key) => reading(() => read(key, now())?.value),
    set: (key, value, o) =>
      write(() => {
        put(key, value, expiry(o, now()))
      }),
    delete: (key) =>
      write(() => {
        q.delete.run(key)
      }),
    incr: (key, by = 1, o) =>
      write(() => {
        const at = now()
        const row = read(key, at)
        const n = parseCounter(row?.value)
        if (row === undefined || n === undefined) {
          put(key, String(by), expiry(o, at))
          return by
        }
        put(key, String(n + by), row.expiresAt)
        return n + by
      }),
    compareAndSet: (key, expected, value, o) =>
      write(() => {
        const at = now()
        if (read(key, at)?.value !== expected) return false
        put(key, value, expiry(o, at))
        return true
      }),
    hit: (key, windowMs) =>
      write(() => {
        const at = now()
        const h = recordHit(read(key, at)?.value, at, windowMs)
        put(key, h.state, at + windowTtl(windowMs))
        return h.count
      }),
    lease: (key, holder, ttlMs, limit) =>
      write(() => {
        const at = now()
        return saveLeases(key, takeLease(read(key, at)?.value, holder, at, ttlMs, limit))
      }),
    releaseLease: (key, holder) =>
      write(() => {
        const at = now()
        const row = read(key, at)
        if (row !== undefined) saveLeases(key, dropLease(row.value, holder, at))
      }),
    list: (prefix, limit) => listLive(q.list, prefix, limit, now, () => closed, fail),
    close: async () => {
      if (closed) return
      closed = true
      if (timer !== undefined) clearInterval(timer)
      db.close()
    },
  }
  return storeOver(backend)
}

function statements(db: DatabaseSync) {
  const get = db.prepare('SELECT value, expires_at FROM store WHERE key = ?')
  const list = db.prepare('SELECT key, value, expires_at FROM store WHERE key >= ? ORDER BY key LIMIT ?')
  // Planted integers past 2^53 must not throw: read them as bigint, judge them in liveRow.
  get.setReadBigInts(true)
  list.setReadBigInts(true)
  return {
    get,
    list,
    put: db.prepare(
      `INSERT INTO store (key, value, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
    ),
    delete: db.prepare('DELETE FROM store WHERE key = ?'),
    sweep: db.prepare(
      `DELETE FROM store WHERE key IN
         (SELECT key FROM store WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)`,
    ),
    evict: db.prepare(
      `DELETE FROM store WHERE key IN
         (SELECT key FROM store ORDER BY expires_at IS NULL, expires_at LIMIT ?)`,
    ),
    count: db.prepare('SELECT count(*) AS n FROM store'),
    pages: db.prepare(
      'SELECT (SELECT page_count FROM pragma_page_count()) AS pages, (SELECT freelist_count FROM pragma_freelist_count()) AS free',
    ),
  }
}

/**
 * A row as the store sees it: expired rows, and rows another program wrote with a value that
 * is not text or an expiry that is not an integer, are absent.
 */
function liveRow(raw: unknown, at: number): Row | undefined {
  if (raw === undefined) return undefined
  const { value, expires_at } = raw as { value: unknown; expires_at: unknown }
  if (typeof value !== 'string') return undefined
  if (expires_at === null) return { value, expiresAt: undefined }
  if (typeof expires_at !== 'bigint') return undefined
  const expiresAt = Number(expires_at)
  return expiresAt > at ? { value, expiresAt } : undefined
}

async function* listLive(
  list: StatementSync,
  prefix: string,
  limit: number,
  now: () => number,
  closed: () => boolean,
  fail: (e: unknown) => never,
): AsyncIterable<StoreEntry> {
  // Pages by key, so no statement stays open while the caller awaits between entries.
  let from = prefix
  let inclusive = true
  let yielded = 0
  while (yielded < limit) {
    if (closed()) throw new StoreUnavailable('sqlite store: closed')
    let rows: Array<{ key: string; value: unknown; expires_at: unknown }>
    try {
      rows = list.all(from, Math.min(sweepBatch, limit - yielded + 1)) as typeof rows
    } catch (e) {
      return fail(e)
    }
    if (!inclusive && rows[0]?.key === from) rows.shift()
    if (rows.length === 0) return
    const at = now()
    for (const r of rows) {
      if (!r.key.startsWith(prefix)) return
      const row = liveRow(r, at)
      if (row !== undefined) {
        yield { key: r.key, value: row.value, expiresAt: row.expiresAt }
        if (++yielded >= limit) return
      }
    }
    from = rows[rows.length - 1]!.key
    inclusive = false
  }
}

function sqliteCode(e: unknown): number | undefined {
  const code = (e as { errcode?: unknown }).errcode
  return typeof code === 'number' ? code & 0xff : undefined
}
