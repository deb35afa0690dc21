/**
 * Bringing qpsmtpd's greylisting database along (`qtsmtpd import-greylist`): its records go
 * under `triplet:` as they are, with the expiry the plugin would give them. Keys from before
 * qpsmtpd's `upgrade` (the address as text) get the integer form; a record already in the store
 * wins (it is newer); expired and malformed records are counted and left out.
 */
import type { Store } from '../../store/index.ts'
import { decide, formatRecord, ipInteger, type Periods, parseRecord } from './triplet.ts'

export interface ImportCounts {
  imported: number
  /** Already in the store: kept. */
  existing: number
  expired: number
  invalid: number
}

/** qpsmtpd's convert_db: `1.2.3.4:sender:rcpt` → `16909060:sender:rcpt`. */
function currentKey(key: string): string | undefined {
  const [first = '', ...rest] = key.split(':')
  if (/^\d+$/.test(first)) return key
  const dotted = /^\d{1,3}(?:\.\d{1,3}){3}$/.test(first) ? ipInteger(first) : undefined
  if (dotted !== undefined) return [dotted, ...rest].join(':')
  // Keys without the address (remote_ip 0) start with the sender, which has an @ or is empty.
  return first === '' || first.includes('@') ? key : undefined
}

export async function importGreylist(
  entries: AsyncIterable<{ readonly key: string; readonly value: string }>,
  store: Store,
  periods: Periods,
  now: number,
): Promise<ImportCounts> {
  const counts: ImportCounts = { imported: 0, existing: 0, expired: 0, invalid: 0 }
  for await (const { key, value } of entries) {
    const record = parseRecord(value)
    const target = currentKey(key)
    if (record === undefined || target === undefined) {
      counts.invalid++
      continue
    }
    // What the plugin would make of it now: a record that would start over has expired.
    const life = record.white > 0 ? periods.white : periods.grey
    const left = record.ts + life - now
    if (left <= 0 || decide(record, now, periods, Number.POSITIVE_INFINITY).outcome === 'new') {
      counts.expired++
      continue
    }
    const set = await store.compareAndSet(`triplet:${target}`, undefined, formatRecord(record), { ttlMs: left * 1000 })
    if (set) counts.imported++
    else counts.existing++
  }
  return counts
}
