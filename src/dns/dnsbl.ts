/**
 * DNS lists (RFC 5782): one lookup of a key (a reversed address, a domain) under a list's zone,
 * answered as listed, clear or error. An A record in 127.0.0.0/8 is a listing; an address outside
 * it means the zone is wildcarded, parked or hijacked, and 127.255.255.0/24 are the error codes
 * lists answer to refused queries (Spamhaus: typing error, public resolver, excess volume): both
 * are errors, never listings, so a broken list cannot refuse every client. A filter keeps the
 * codes an operator wants (Spamhaus ZEN's 127.0.0.2-11, a SURBL bit mask).
 * Security: list answers (TXT) reach SMTP replies only through replyText.
 */
import { parseIPv4 } from '../net/ip.ts'
import type { DnsResolver } from './types.ts'

/** An answer code as a 32-bit number (`127.0.0.2` is 0x7f000002). */
export type CodeFilter = (code: number) => boolean

export type ListAnswer =
  /** `codes` are the answer's addresses the filter kept; `text` the list's TXT, made safe for a reply. */
  | { readonly kind: 'listed'; readonly codes: readonly string[]; readonly text: string | undefined }
  /** Not listed: NXDOMAIN, NODATA, or only codes the filter did not keep (`ignored`). */
  | { readonly kind: 'clear'; readonly ignored: readonly string[] }
  /** No usable answer: a timeout, a server failure, an error code, an address outside 127/8. */
  | { readonly kind: 'error'; readonly detail: string }

export interface ListQuery {
  /** Which codes count as listings; all by default. */
  readonly filter?: CodeFilter | undefined
  /** Codes that mean "the list refused to answer" besides 127.255.255.0/24 (URIBL's 127.0.0.1). */
  readonly errorCodes?: CodeFilter | undefined
  /** Ask for the TXT record too, in parallel, for the reply text. */
  readonly text?: boolean | undefined
  readonly signal?: AbortSignal | undefined
  readonly timeoutMs?: number | undefined
}

const LOOPBACK_NET = 127
const isListErrorCode = (code: number): boolean => code >>> 8 === 0x7fffff

export async function queryList(dns: DnsResolver, name: string, q: ListQuery = {}): Promise<ListAnswer> {
  const opts = { signal: q.signal, timeoutMs: q.timeoutMs }
  const [a, txt] = await Promise.all([
    dns.query(name, 'A', opts),
    q.text === true ? dns.query(name, 'TXT', opts) : undefined,
  ])
  switch (a.kind) {
    case 'nxdomain':
    case 'nodata':
      return { kind: 'clear', ignored: [] }
    case 'timeout':
      return { kind: 'error', detail: 'timeout' }
    case 'servfail':
      return { kind: 'error', detail: a.detail }
    case 'records':
      break
  }
  const kept: string[] = []
  const ignored: string[] = []
  for (const record of a.records) {
    const code = parseIPv4(record)
    if (code === undefined || code >>> 24 !== LOOPBACK_NET)
      return { kind: 'error', detail: `answer ${record} is outside 127.0.0.0/8 (a wildcarded or hijacked zone)` }
    if (isListErrorCode(code) || q.errorCodes?.(code) === true)
      return { kind: 'error', detail: `answer ${record} is the list's error code (query refused)` }
    if (q.filter === undefined || q.filter(code)) kept.push(record)
    else ignored.push(record)
  }
  if (kept.length === 0) return { kind: 'clear', ignored }
  const text = txt?.kind === 'records' ? replyText(txt.records.map((r) => r.join('')).join(' ')) : undefined
  return { kind: 'listed', codes: kept, text: text === '' ? undefined : text }
}

const MAX_REPLY_TEXT = 300

/** Text from DNS or a config file made fit for one SMTP reply line: printable ASCII, bounded. */
export function replyText(text: string): string {
  const clean = text
    .replace(/[^\x20-\x7e]+/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim()
  return clean.length > MAX_REPLY_TEXT ? `${clean.slice(0, MAX_REPLY_TEXT - 3)}...` : clean
}

/**
 * Postfix's answer filter syntax (`reject_rbl_client zen.spamhaus.org=127.0.0.[2..11]`): four
 * octets, each a number or a bracketed list of numbers and `a..b` ranges separated by `;`.
 * Undefined when the text is not such a filter.
 */
export function parseCodeFilter(text: string): CodeFilter | undefined {
  // Split at the dots outside brackets: `127.0.0.[2..11]` has four octets.
  const octets = text.match(/\[[^\]]*\]|[^.[\]]+/g) ?? []
  if (octets.length !== 4 || octets.join('.') !== text) return undefined
  const sets: ((n: number) => boolean)[] = []
  for (const spec of octets) {
    const test = parseOctetSpec(spec)
    if (test === undefined) return undefined
    sets.push(test)
  }
  return (code) => sets.every((test, i) => test((code >>> (24 - 8 * i)) & 255))
}

const OCTET = /^(?:0|[1-9]\d{0,2})$/
const octet = (s: string): number | undefined => (OCTET.test(s) && Number(s) <= 255 ? Number(s) : undefined)

function parseOctetSpec(spec: string): ((n: number) => boolean) | undefined {
  const single = octet(spec)
  if (single !== undefined) return (n) => n === single
  if (!spec.startsWith('[') || !spec.endsWith(']')) return undefined
  const ranges: [number, number][] = []
  for (const item of spec.slice(1, -1).split(';')) {
    const [lo, hi, extra] = item.split('..')
    const from = octet(lo ?? '')
    const to = hi === undefined ? from : octet(hi)
    if (from === undefined || to === undefined || extra !== undefined || to < from) return undefined
    ranges.push([from, to])
  }
  return (n) => ranges.some(([from, to]) => n >= from && n <= to)
}

/** A zone or host name as DNS lists take it: letters, digits, `-` and `_`, labels of 1-63. */
export function isDomainName(name: string): boolean {
  const bare = name.endsWith('.') ? name.slice(0, -1) : name
  if (bare.length === 0 || bare.length > 253) return false
  return bare.split('.').every((l) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l))
}
