/**
 * Greylisting's records and decisions, without I/O: qpsmtpd's record `ts:new:black:white`
 * (seconds since the epoch; black = deferred attempts, white = refreshes since it passed) under
 * qpsmtpd's key (`<IP as an integer>[:sender][:recipient]`), so that a qpsmtpd database imports
 * as it is. The periods are Evan Harris's: black (defer), grey (a retry passes and whitens the
 * triplet), white (passes, renewed by deliveries).
 */
import { parseIp } from '../../net/index.ts'
import { type Address, formatAddress } from '../../protocol/envelope.ts'

export interface GreylistRecord {
  /** First sighting while black or grey; the last refresh while white (epoch seconds). */
  readonly ts: number
  readonly isNew: number
  readonly black: number
  readonly white: number
}

export interface Periods {
  /** Seconds. */
  readonly black: number
  readonly grey: number
  readonly white: number
}

/** qpsmtpd's record, or undefined for anything else (garbage is absent). */
export function parseRecord(text: string | undefined): GreylistRecord | undefined {
  const m = text === undefined ? null : /^(\d{1,12}):(\d{1,9}):(\d{1,9}):(\d{1,9})$/.exec(text)
  if (!m) return undefined
  return { ts: Number(m[1]), isNew: Number(m[2]), black: Number(m[3]), white: Number(m[4]) }
}

export const formatRecord = (r: GreylistRecord): string => `${r.ts}:${r.isNew}:${r.black}:${r.white}`

/** Net::IP's intip: the address as a decimal integer (IPv4-mapped IPv6 as IPv4). */
export function ipInteger(ip: string): string | undefined {
  const parsed = parseIp(ip)
  return parsed === undefined ? undefined : parsed.value.toString()
}

export interface TripletParts {
  readonly remote_ip: boolean
  readonly sender: boolean
  readonly recipient: boolean
}

/** qpsmtpd's get_greylist_key; undefined when no part is enabled or the address is unusable. */
export function tripletKey(
  parts: TripletParts,
  ip: string,
  sender: Address | null,
  recipient: Address | undefined,
): string | undefined {
  const key: string[] = []
  if (parts.remote_ip) {
    const n = ipInteger(ip)
    if (n === undefined) return undefined
    key.push(n)
  }
  if (parts.sender) key.push(formatAddress(sender))
  if (parts.recipient && recipient !== undefined) key.push(formatAddress(recipient))
  return key.length === 0 ? undefined : key.join(':')
}

export type Outcome =
  | 'new' // first sighting (or a retry after the grey period): defer
  | 'black' // retried too soon: defer
  | 'promoted' // retried in the grey period: pass, now white
  | 'white' // known good: pass

export interface Decision {
  readonly outcome: Outcome
  /** What to store, or undefined when the stored record stays as it is. */
  readonly next: GreylistRecord | undefined
  /** Seconds the stored record stays useful. */
  readonly ttl: number
}

/**
 * What a sighting of a triplet means at `now` (epoch seconds). A white record is refreshed
 * only when older than `refreshAfter` seconds, so a busy client costs a read per message, not a
 * write. Unlike qpsmtpd (whose retry after the grey period passed without becoming white, and
 * whose expired white record fell through to that), both start over as a first sighting.
 */
export function decide(
  record: GreylistRecord | undefined,
  now: number,
  periods: Periods,
  refreshAfter: number,
): Decision {
  const first: Decision = { outcome: 'new', next: { ts: now, isNew: 1, black: 0, white: 0 }, ttl: periods.grey }
  if (record === undefined) return first
  // A node whose clock runs a little ahead may have written a timestamp in our future.
  const age = Math.max(0, now - record.ts)
  if (record.white > 0) {
    if (age >= periods.white) return first
    if (age < refreshAfter) return { outcome: 'white', next: undefined, ttl: periods.white - age }
    return { outcome: 'white', next: { ...record, ts: now, white: record.white + 1 }, ttl: periods.white }
  }
  if (age >= periods.grey) return first
  if (age < periods.black) {
    return { outcome: 'black', next: { ...record, black: record.black + 1 }, ttl: periods.grey - age }
  }
  return { outcome: 'promoted', next: { ...record, ts: now, white: 1 }, ttl: periods.white }
}
