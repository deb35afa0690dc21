/**
 * Karma's per-client record and its arithmetic, without I/O: qpsmtpd's value
 * `penalty_start:naughty:nice:connects` (epoch seconds; counts of connections) under qpsmtpd's
 * key (the client address as an integer), so that a qpsmtpd karma database imports as it is.
 */
import { formatIp, parseIp } from '../../net/index.ts'

export interface KarmaRecord {
  /** When the penalty box began (epoch seconds; in the future with the repeat-offender bonus); 0: none. */
  readonly penaltyStart: number
  readonly naughty: number
  readonly nice: number
  readonly connects: number
}

export const emptyRecord: KarmaRecord = { penaltyStart: 0, naughty: 0, nice: 0, connects: 0 }

/** qpsmtpd's parse_db_record: missing fields are 0; anything but digits and colons is no record. */
export function parseKarmaRecord(text: string | undefined): KarmaRecord | undefined {
  if (text === undefined || !/^\d{0,12}(?::\d{0,9}){0,3}$/.test(text)) return undefined
  const [p = 0, n = 0, g = 0, c = 0] = text.split(':').map((f) => (f === '' ? 0 : Number(f)))
  return { penaltyStart: p, naughty: n, nice: g, connects: c }
}

export const formatKarmaRecord = (r: KarmaRecord): string => `${r.penaltyStart}:${r.naughty}:${r.nice}:${r.connects}`

/** Nice minus naughty connections: qpsmtpd's karma_history. */
export const historyOf = (r: KarmaRecord): number => r.nice - r.naughty

/** Net::IP's intip, the record's key: the address as a decimal integer. */
export function karmaKey(ip: string): string | undefined {
  return parseIp(ip)?.value.toString()
}

/** The address a key stands for (integers below 2^32 are IPv4, as qpsmtpd stores them). */
export function keyAddress(key: string): string | undefined {
  if (!/^\d{1,39}$/.test(key)) return undefined
  const n = BigInt(key)
  if (n < 2n ** 32n) return formatIp({ family: 4, value: Number(n) })
  return n < 2n ** 128n ? formatIp({ family: 6, value: n }) : undefined
}

/** Days of penalty left at `now` (epoch seconds), 0 when none. */
export function penaltyLeft(r: KarmaRecord, now: number, penaltyDays: number): number {
  if (r.penaltyStart === 0) return 0
  const left = penaltyDays - (now - r.penaltyStart) / 86_400
  return Math.max(0, left)
}

export type Judgement = 'penalty box' | 'negative' | 'positive' | 'neutral'

export interface KarmaSettings {
  readonly strikes: number
  readonly negative: number
}

/**
 * The record after a connection whose karma was `karma` (qpsmtpd's disconnect_handler): at least
 * `strikes` below zero is a naughty connection, and a history at or below `-negative` then sends
 * the client to the penalty box (a client with no nice connection and a history below -5 for a
 * day more per naughty connection); at least `strikes` above zero is a nice one.
 */
export function afterConnection(
  r: KarmaRecord,
  karma: number,
  s: KarmaSettings,
  now: number,
): { readonly record: KarmaRecord; readonly judgement: Judgement } {
  const connects = r.connects + 1
  if (karma <= -s.strikes) {
    const naughty = r.naughty + 1
    const history = r.nice - naughty
    if (history > -s.negative) return { record: { ...r, naughty, connects }, judgement: 'negative' }
    const penaltyStart = r.nice === 0 && history < -5 ? now + Math.abs(history) * 86_400 : now
    return { record: { ...r, penaltyStart, naughty, connects }, judgement: 'penalty box' }
  }
  if (karma >= s.strikes) return { record: { ...r, nice: r.nice + 1, connects }, judgement: 'positive' }
  return { record: { ...r, connects }, judgement: 'neutral' }
}
