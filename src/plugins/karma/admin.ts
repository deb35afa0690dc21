/**
 * qpsmtpd's karma_tool on the store: list and search the records, send an address to the
 * penalty box (capture) or take it out (release). `qtsmtpd karma` calls these; the store given
 * is karma's scope (`store.scope('karma')`, or the plugin's own store).
 */
import type { Store } from '../../store/index.ts'
import { emptyRecord, formatKarmaRecord, type KarmaRecord, karmaKey, keyAddress, parseKarmaRecord } from './record.ts'

export interface KarmaEntry {
  readonly address: string
  readonly record: KarmaRecord
}

/** karma_tool's `search` words: records with naughty, nice, or both kinds of connections. */
export type KarmaFilter = 'all' | 'naughty' | 'nice' | 'both'

const keep = (r: KarmaRecord, filter: KarmaFilter): boolean =>
  filter === 'all' ||
  (filter === 'naughty' && r.naughty > 0) ||
  (filter === 'nice' && r.nice > 0) ||
  (filter === 'both' && r.naughty > 0 && r.nice > 0)

/** Every record (up to `limit`), in the store's order. */
export async function* listKarma(
  store: Store,
  filter: KarmaFilter = 'all',
  limit = 1_000_000,
): AsyncIterable<KarmaEntry> {
  for await (const e of store.list('', limit)) {
    const address = keyAddress(e.key)
    const record = parseKarmaRecord(e.value)
    if (address !== undefined && record !== undefined && keep(record, filter)) yield { address, record }
  }
}

/** One address's record (an empty one when there is none). */
export async function showKarma(store: Store, address: string): Promise<KarmaEntry> {
  const key = keyOf(address)
  return { address, record: parseKarmaRecord(await store.get(key)) ?? emptyRecord }
}

/** karma_tool capture: the penalty box from `now` (epoch seconds), one more naughty connection. */
export async function captureKarma(store: Store, address: string, now: number, ttlMs: number): Promise<KarmaRecord> {
  return update(store, address, ttlMs, (r) => ({ ...r, penaltyStart: now, naughty: r.naughty + 1 }))
}

/** karma_tool release: out of the penalty box, naughty connections forgotten. */
export async function releaseKarma(store: Store, address: string, ttlMs: number): Promise<KarmaRecord> {
  return update(store, address, ttlMs, (r) => ({ ...r, penaltyStart: 0, naughty: 0 }))
}

async function update(
  store: Store,
  address: string,
  ttlMs: number,
  change: (r: KarmaRecord) => KarmaRecord,
): Promise<KarmaRecord> {
  const key = keyOf(address)
  for (;;) {
    const raw = await store.get(key)
    const next = change(parseKarmaRecord(raw) ?? emptyRecord)
    if (await store.compareAndSet(key, raw, formatKarmaRecord(next), { ttlMs })) return next
  }
}

function keyOf(address: string): string {
  const key = karmaKey(address)
  if (key === undefined) throw new Error(`not an IP address: ${address}`)
  return key
}

/** karma_tool's table: address, penalty start, naughty, nice, connects; then the totals. */
export function karmaTable(entries: readonly KarmaEntry[], formatTime: (epochSeconds: number) => string): string {
  const rows = [['IP address', 'Penalty since', 'Naughty', 'Nice', 'Connects']]
  const totals = { naughty: 0, nice: 0, connects: 0 }
  for (const { address, record: r } of entries) {
    rows.push([
      address,
      r.penaltyStart === 0 ? '' : formatTime(r.penaltyStart),
      String(r.naughty),
      String(r.nice),
      String(r.connects),
    ])
    totals.naughty += r.naughty
    totals.nice += r.nice
    totals.connects += r.connects
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  const lines = rows.map((row) =>
    row
      .map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd(),
  )
  lines.push(`${entries.length} addresses; ${totals.naughty} naughty, ${totals.nice} nice, ${totals.connects} connects`)
  return `${lines.join('\n')}\n`
}
