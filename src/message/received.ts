/**
 * The Received trace field (RFC 5321 §4.4) with the `with` protocol types of RFC 3848 and
 * RFC 6531 §3.7.4.2, and TLS details as a comment.
 *
 * Returns the field VALUE; the caller prepends it (`headers.prepend('Received', value)`).
 * Security: the HELO argument and the reverse-DNS name come from the client / the DNS. They are
 * reduced to [A-Za-z0-9.:-_[]] and 255 characters, so that `EHLO a) by trusted.example (x`
 * cannot forge a comment or a clause, and CR/LF/NUL cannot inject a field.
 */
import { unmapIPv4 } from '../net/ip.ts'

export interface ReceivedInfo {
  /** The HELO/EHLO argument, as the client sent it. */
  readonly helo?: string | undefined
  readonly remoteIp: string
  /** Reverse-DNS name, only if verified (forward-confirmed). */
  readonly remoteHost?: string | undefined
  /** Our host name. */
  readonly me: string
  /** SMTP after HELO, ESMTP after EHLO. */
  readonly protocol: 'SMTP' | 'ESMTP'
  readonly tls?: { readonly version: string; readonly cipher: string } | undefined
  readonly authenticated: boolean
  /** The transaction used SMTPUTF8 (RFC 6531). */
  readonly smtputf8: boolean
  readonly queueId: string
  /** The recipient, only when there is exactly one (RFC 5321 §7.2: do not disclose Bcc lists). */
  readonly recipient?: string | undefined
  readonly date: Date
}

/** Keeps only [A-Za-z0-9.:-_[]], one `_` per other character, at most 255 characters. */
export function sanitizeHostText(s: string, max = 255): string {
  // With the u flag an astral character is one match, so the result is ASCII, one unit per character.
  return s.replace(/[^A-Za-z0-9.:\-_[\]]/gu, '_').slice(0, max)
}

/**
 * The `with` keyword. RFC 3848 registers the A (authenticated) and S (TLS) suffixes only for the
 * ESMTP family, so a HELO client that used TLS (implicit TLS) is written as ESMTPS.
 */
export function withProtocol(info: Pick<ReceivedInfo, 'protocol' | 'tls' | 'authenticated' | 'smtputf8'>): string {
  const s = info.tls !== undefined ? 'S' : ''
  const a = info.authenticated ? 'A' : ''
  if (info.smtputf8) return `UTF8SMTP${s}${a}`
  if (info.protocol === 'SMTP' && s === '' && a === '') return 'SMTP'
  return `ESMTP${s}${a}`
}

/** The TCP-info address literal (RFC 5321 §4.1.3): `[192.0.2.1]`, `[IPv6:2001:db8::1]`. */
function addressLiteral(ip: string): string {
  const v4 = unmapIPv4(ip)
  if (v4 !== ip) return `[${v4}]`
  const clean = sanitizeHostText(ip, 64).replace(/[[\]]/g, '_')
  // Addresses come from the socket (or a trusted proxy): only IPv6 has colons.
  return ip.includes(':') ? `[IPv6:${clean}]` : `[${clean}]`
}

const two = (n: number): string => String(n).padStart(2, '0')
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const

/**
 * RFC 5322 §3.3 date-time with a numeric zone, in the given offset from UTC (default: local).
 * @example rfc5322Date(new Date('2026-11-25T16:43:40Z'), 0) // 'Wed, 25 Nov 2026 16:43:40 +0000'
 */
export function rfc5322Date(date: Date, offsetMinutes = -date.getTimezoneOffset()): string {
  // One Received per message: the text changes once a second, so keep the last one.
  const second = Math.floor(date.getTime() / 1000)
  if (second === lastDate.second && offsetMinutes === lastDate.offset) return lastDate.text
  const text = formatDate(date, offsetMinutes)
  lastDate = { second, offset: offsetMinutes, text }
  return text
}

let lastDate = { second: -1, offset: 0, text: '' }

function formatDate(date: Date, offsetMinutes: number): string {
  const d = new Date(date.getTime() + offsetMinutes * 60_000) // read with getUTC*: wall time in that zone
  const sign = offsetMinutes < 0 ? '-' : '+'
  const abs = Math.abs(offsetMinutes)
  return (
    `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ` +
    `${sign}${two(Math.floor(abs / 60))}${two(abs % 60)}`
  )
}

/** Printable text only (UTF-8 allowed for SMTPUTF8 addresses); no CR, LF, NUL or other controls. */
const printable = (s: string, max: number): string => {
  const out = s.replace(/[\x00-\x1f\x7f-\x9f]/gu, '_')
  return out.length <= max ? out : Array.from(out).slice(0, max).join('')
}

/**
 * The value of a Received field.
 * @example
 * headers.prepend('Received', buildReceived({ helo: 'client.example', remoteIp: '192.0.2.1', me: 'mx.example',
 *   protocol: 'ESMTP', authenticated: false, smtputf8: false, queueId: newQueueId(), date: new Date() }))
 */
export function buildReceived(info: ReceivedInfo): string {
  const helo = info.helo === undefined || info.helo === '' ? 'unknown' : sanitizeHostText(info.helo)
  const rdns = info.remoteHost === undefined || info.remoteHost === '' ? 'unknown' : sanitizeHostText(info.remoteHost)
  const lines = [
    `from ${helo} (${rdns} ${addressLiteral(info.remoteIp)})`,
    `by ${sanitizeHostText(info.me)} (qtsmtpd) with ${withProtocol(info)} id ${sanitizeHostText(info.queueId, 64)}`,
  ]
  if (info.tls !== undefined) {
    const tlsText = (s: string): string => s.replace(/[^A-Za-z0-9._+\-/]/g, '_').slice(0, 100)
    lines.push(`(version=${tlsText(info.tls.version)} cipher=${tlsText(info.tls.cipher)})`)
  }
  if (info.recipient !== undefined) {
    lines.push(`for <${printable(info.recipient.replace(/^<|>$/g, ''), 320).replace(/[<>]/g, '_')}>`)
  }
  return `${lines.join('\r\n\t')}; ${rfc5322Date(info.date)}`
}
