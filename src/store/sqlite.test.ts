import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { collect, FakeClock, storeContract, textGarbage } from './contract-suite.ts'
import { sqliteStore } from './sqlite.ts'
import { StoreFileError } from './sqlite-file.ts'
import { StoreUnavailable } from './store.ts'

const dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-store-'))
after(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
const newFile = () => join(dir, `state-${++files}.db`)

let currentFile = ''
const raw = (sql: string, ...params: Array<string | number | Uint8Array | null>) => {
  const db = new DatabaseSync(currentFile, { timeout: 5_000 })
  db.prepare(sql).run(...params)
  db.close()
}
const rawPut = (key: string, value: string | Uint8Array, expiresAt: unknown = null) =>
  raw('INSERT OR REPLACE INTO store (key, value, expires_at) VALUES (?, ?, ?)', key, value as string, expiresAt as null)

storeContract('sqlite', {
  open: async (clock) => {
    currentFile = newFile()
    const store = sqliteStore({ file: currentFile, now: clock.now })
    return { store, other: sqliteStore({ file: currentFile, now: clock.now }) }
  },
  ttlPasses: async (clock, ms) => clock.advance(ms),
  ttlNow: (clock) => clock.now(),
  garbage: {
    ...Object.fromEntries(
      Object.entries(textGarbage).map(([kind, text]) => [kind, async (k: string) => rawPut(k, text)]),
    ),
    'a blob value': async (k) => rawPut(k, new Uint8Array([0xff, 0])),
    'a text expiry': async (k) => rawPut(k, '7', 'tomorrow'),
    'a fractional expiry': async (k) => rawPut(k, '7', 1_700_000_000_000.5),
  },
  stringGarbage: Object.keys(textGarbage),
})

describe('sqlite store', () => {
  it('is atomic across processes: two workers increment, hit and race for first sightings', async () => {
    const file = newFile()
    await sqliteStore({ file }).close()
    const count = 300
    const children = [0, 1].map(() => fork(join(import.meta.dirname, 'sqlite-child.fixture.ts'), [file, String(count)]))
    const ready = children.map((c) => new Promise((r) => c.once('message', r)))
    await Promise.all(ready)
    type Result = { incr: number[]; hits: number[]; firsts: number }
    const results = children.map((c) => new Promise<Result>((r) => c.once('message', (m) => r(m as Result))))
    for (const c of children) c.send('go')
    const [a, b] = await Promise.all(results)
    const all = (x: number[], y: number[]) => [...x, ...y].sort((p, q) => p - q)
    const expected = Array.from({ length: 2 * count }, (_, i) => i + 1)
    assert.deepEqual(all(a!.incr, b!.incr), expected, 'every increment returned a distinct value')
    assert.deepEqual(all(a!.hits, b!.hits), expected, 'every hit was counted once')
    assert.equal(a!.firsts + b!.firsts, count, 'each first sighting was won by exactly one worker')
    const store = sqliteStore({ file })
    assert.equal(await store.get('shared-counter'), String(2 * count))
    await store.close()
  })

  it('a lock held past the busy timeout rejects promptly with StoreUnavailable', async () => {
    const file = newFile()
    const store = sqliteStore({ file, busyTimeoutMs: 50 })
    const holder = new DatabaseSync(file)
    holder.exec('BEGIN IMMEDIATE')
    try {
      await assert.rejects(store.incr('k'), (e: Error) => e instanceof StoreUnavailable && /locked/.test(e.message))
      assert.equal(await store.get('k'), undefined, 'reads go on in WAL mode while another process writes')
    } finally {
      holder.exec('ROLLBACK')
      holder.close()
    }
    assert.equal(await store.incr('k'), 1, 'works again once the lock is gone')
    await store.close()
  })

  it('sweeps expired entries on its timer and on writes', async () => {
    const file = newFile()
    const clock = new FakeClock()
    const rows = () => {
      const db = new DatabaseSync(file)
      const n = (db.prepare('SELECT count(*) AS n FROM store').get() as { n: number }).n
      db.close()
      return n
    }
    const timed = sqliteStore({ file, now: clock.now, sweepIntervalMs: 20, sweepEvery: 1_000_000 })
    for (let i = 0; i < 1200; i++) await timed.set(`k${i}`, 'v', { ttlMs: 1000 })
    await timed.set('kept', 'v')
    clock.advance(2000)
    for (let i = 0; i < 100 && rows() > 1; i++) await sleep(20)
    assert.equal(rows(), 1)
    await timed.close()

    const onWrites = sqliteStore({ file, now: clock.now, sweepIntervalMs: 0, sweepEvery: 10 })
    for (let i = 0; i < 9; i++) await onWrites.set(`w${i}`, 'v', { ttlMs: 1000 })
    clock.advance(2000)
    assert.equal(rows(), 10)
    await onWrites.set('tenth write', 'v')
    assert.equal(rows(), 2)
    await onWrites.close()
  })

  it('stays within max_size: when full it drops expired, then soonest-expiring entries', async () => {
    const file = newFile()
    const clock = new FakeClock()
    const warnings: string[] = []
    const maxBytes = 256 * 1024
    const store = sqliteStore({ file, now: clock.now, maxBytes, onWarning: (m) => warnings.push(m) })
    await store.set('permanent', 'kept')
    const value = 'x'.repeat(200)
    for (let i = 0; i < 5000; i++) await store.set(`k${String(i).padStart(5, '0')}`, value, { ttlMs: 1000 + i })
    assert.ok(statSync(file).size <= maxBytes, `file ${statSync(file).size} bytes`)
    assert.ok(
      warnings.some((w) => /full \(max_size\); evicted/.test(w)),
      warnings.join('\n'),
    )
    assert.equal(await store.get('permanent'), 'kept', 'entries without TTL go last')
    assert.equal(await store.get('k04999'), value, 'the latest write is there')
    assert.equal(await store.get('k00000'), undefined, 'the soonest-expiring went first')
    await store.close()
  })
})

describe('sqlite store file at start', () => {
  it('a corrupt store is moved aside and replaced, with a warning naming both files', async () => {
    const file = newFile()
    const first = sqliteStore({ file, sweepIntervalMs: 0 })
    for (let i = 0; i < 2000; i++) await first.set(`k${i}`, 'v'.repeat(100))
    await first.close()
    const db = new DatabaseSync(file)
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
    db.close()
    // Keep the header page, scribble over the b-tree pages.
    const size = statSync(file).size
    const { openSync, writeSync, closeSync } = await import('node:fs')
    const fd = openSync(file, 'r+')
    writeSync(fd, Buffer.alloc(size - 8192, 0xa5), 0, size - 8192, 4096)
    closeSync(fd)

    const warnings: string[] = []
    const store = sqliteStore({ file, onWarning: (m) => warnings.push(m) })
    assert.equal(warnings.length, 1)
    assert.match(
      warnings[0]!,
      new RegExp(`^${file}: corrupt store \\(.+\\); moved to ${file}\\.corrupt-\\S+ and started a new one$`),
    )
    assert.equal(await store.get('k1'), undefined)
    await store.set('k1', 'fresh')
    assert.equal(await store.get('k1'), 'fresh')
    await store.close()
    assert.equal(readdirSync(dir).filter((f) => f.startsWith(`state-${files}.db.corrupt-`)).length, 1)
  })

  it('a file that is not an SQLite database is refused, untouched, with its name', () => {
    const file = newFile()
    writeFileSync(file, 'root:x:0:0:root:/root:/bin/bash\n')
    assert.throws(
      () => sqliteStore({ file }),
      (e: Error) => e instanceof StoreFileError && e.message.startsWith(`${file}: not an SQLite database`),
    )
    assert.equal(statSync(file).size, 32)
  })

  it("another program's SQLite database is refused", () => {
    const file = newFile()
    const db = new DatabaseSync(file)
    db.exec('CREATE TABLE accounts (id INTEGER)')
    db.close()
    assert.throws(
      () => sqliteStore({ file }),
      (e: Error) =>
        e instanceof StoreFileError &&
        e.message === `${file}: an SQLite database of another program, not a qtsmtpd store: refusing to use it`,
    )
  })

  it('a directory that does not exist is a clear error', () => {
    const file = join(dir, 'missing', 'state.db')
    assert.throws(
      () => sqliteStore({ file }),
      (e: Error) => e instanceof StoreFileError && e.message.startsWith(`${file}: cannot open`),
    )
  })

  it('lists in key order across pages', async () => {
    const store = sqliteStore({ file: newFile() })
    for (let i = 0; i < 1200; i++) await store.set(`p:${String(i).padStart(4, '0')}`, String(i))
    const keys = (await collect(store.list('p:', 1100))).map((e) => e.key)
    assert.equal(keys.length, 1100)
    assert.deepEqual(keys, [...keys].sort())
    assert.equal(new Set(keys).size, 1100)
    await store.close()
  })
})
