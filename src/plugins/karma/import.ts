/**
 * Bringing qpsmtpd's karma database along (`qtsmtpd import-karma`): each record under its key
 * (the address as an integer), kept `history_days` from now (plus what is left of a penalty);
 * a record already in the store wins, malformed ones are counted and left out.
 */
import type { Store } from '../../store/index.ts'
import type { ImportCounts } from '../greylisting/import.ts'
import { formatKarmaRecord, keyAddress, parseKarmaRecord } from './record.ts'

export interface KarmaKeeping {
  readonly penaltyDays: number
  readonly historyDays: number
}

export async function importKarma(
  entries: AsyncIterable<{ readonly key: string; readonly value: string }>,
  store: Store,
  keeping: KarmaKeeping,
  now: number,
): Promise<ImportCounts> {
  const counts: ImportCounts = { imported: 0, existing: 0, expired: 0, invalid: 0 }
  for await (const { key, value } of entries) {
    const record = parseKarmaRecord(value)
    if (record === undefined || keyAddress(key) === undefined) {
      counts.invalid++
      continue
    }
    const penaltyLeft = Math.max(0, record.penaltyStart + keeping.penaltyDays * 86_400 - now)
    const ttlMs = Math.round((penaltyLeft + keeping.historyDays * 86_400) * 1000)
    if (await store.compareAndSet(key, undefined, formatKarmaRecord(record), { ttlMs })) counts.imported++
    else counts.existing++
  }
  return counts
}
