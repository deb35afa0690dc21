/**
 * IPv4/IPv6 address lists (relayclients, norelayclients, dnsbl_allow, …) on net/ip.ts's parsers.
 *
 * Accepted entries: `1.2.3.4`, `1.2.3.0/24`, `2001:db8::/32`, `::ffff:1.2.3.4[/n]` (becomes an IPv4
 * rule), and qpsmtpd's relayclients prefixes: `192.168.` (whole dotted octets) and `2001:db8:`
 * (whole hextets of the EXPANDED address, so `2001:db8:` is 2001:db8::/32 however the client's
 * address is compressed; qpsmtpd compared the text as written). Host bits after the prefix are
 * ignored. Octets with leading zeros are refused (inet_aton reads them as octal). qpsmtpd's
 * sample relayclients also has expanded IPv6 prefixes ending on any nibble (`2001:0DB8` is
 * 2001:db8::/32, `2001:0db8:ab` is /40): full groups of four digits, then one to four.
 * Client addresses in ::ffff:0:0/96 are matched against IPv4 rules only; other IPv6 rules (even
 * ::/0) match only real IPv6 clients, so an IPv6 catch-all never opens relaying to all of IPv4.
 */
import { parseIPv4, parseIPv6, parseIp } from './ip.ts'

export type Cidr =
  | { readonly family: 4; readonly first: number; readonly last: number; readonly prefix: number }
  | { readonly family: 6; readonly first: bigint; readonly last: bigint; readonly prefix: number }

const HEXTET = /^[0-9a-fA-F]{1,4}$/
const V4_PREFIX_FORM = /^(?:\d{1,3}\.){1,3}$/
/** `2001:0DB8`, `2001:0db8:a`: at least two groups, no `::`, fewer than eight (qpsmtpd's nibble prefixes). */
const EXPANDED_V6_PREFIX = /^(?:[0-9a-fA-F]{4}:){1,6}[0-9a-fA-F]{1,4}$/

/** Parses one list entry; undefined when it is not a valid address, CIDR or prefix. */
export function parseCidr(text: string): Cidr | undefined {
  if (V4_PREFIX_FORM.test(text)) {
    const octets = text.slice(0, -1).split('.')
    const addr = parseIPv4([...octets, ...Array<string>(4 - octets.length).fill('0')].join('.'))
    return addr === undefined ? undefined : v4(addr, octets.length * 8)
  }
  if (text.endsWith(':') && !text.includes('::') && !text.includes('/')) {
    const hextets = text.slice(0, -1).split(':')
    if (hextets.length > 7 || !hextets.every((h) => HEXTET.test(h))) return undefined
    return v6(parseIPv6(`${hextets.join(':')}::`) ?? 0n, hextets.length * 16)
  }
  if (EXPANDED_V6_PREFIX.test(text)) {
    const groups = text.split(':')
    const last = groups.at(-1) ?? ''
    const nibbles = groups.slice(0, -1).join('') + last
    const value = BigInt(`0x${nibbles.padEnd(32, '0')}`)
    return v6(value, nibbles.length * 4)
  }
  const slash = text.indexOf('/')
  const addrText = slash < 0 ? text : text.slice(0, slash)
  const lenText = slash < 0 ? undefined : text.slice(slash + 1)
  if (lenText !== undefined && !/^\d{1,3}$/.test(lenText)) return undefined
  const a4 = parseIPv4(addrText)
  if (a4 !== undefined) {
    const len = lenText === undefined ? 32 : Number(lenText)
    return len > 32 ? undefined : v4(a4, len)
  }
  const a6 = parseIPv6(addrText)
  if (a6 === undefined) return undefined
  const len = lenText === undefined ? 128 : Number(lenText)
  if (len > 128) return undefined
  if (len >= 96 && a6 >> 32n === 0xffffn) return v4(Number(a6 & 0xffffffffn), len - 96)
  return v6(a6, len)
}

function v4(addr: number, prefix: number): Cidr {
  const size = 2 ** (32 - prefix)
  const first = addr - (addr % size)
  return { family: 4, first, last: first + size - 1, prefix }
}

function v6(addr: bigint, prefix: number): Cidr {
  const hostBits = BigInt(128 - prefix)
  const first = (addr >> hostBits) << hostBits
  return { family: 6, first, last: first + (1n << hostBits) - 1n, prefix }
}

type Ranges<T> = { readonly first: T[]; readonly last: T[] }

function merge<T extends number | bigint>(cidrs: { first: T; last: T }[], next: (x: T) => T): Ranges<T> {
  const sorted = [...cidrs].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0))
  const first: T[] = []
  const last: T[] = []
  for (const c of sorted) {
    const i = last.length - 1
    const prevLast = last[i]
    if (prevLast !== undefined && c.first <= next(prevLast)) {
      if (c.last > prevLast) last[i] = c.last
    } else {
      first.push(c.first)
      last.push(c.last)
    }
  }
  return { first, last }
}

function inRanges<T extends number | bigint>(r: Ranges<T>, x: T): boolean {
  // Binary search for the last range starting at or below x.
  let lo = 0
  let hi = r.first.length - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    if ((r.first[mid] as T) <= x) {
      found = mid
      lo = mid + 1
    } else hi = mid - 1
  }
  return found >= 0 && x <= (r.last[found] as T)
}

/**
 * A parsed address list with O(log n) lookups over merged ranges.
 *
 * @example
 * const relay = CidrList.of(['192.168.', '2001:db8::/32'].map((t) => parseCidr(t)!))
 * relay.contains('::ffff:192.168.1.9') // true when 192.168. is listed
 */
export class CidrList {
  readonly entries: readonly Cidr[]
  readonly #v4: Ranges<number>
  readonly #v6: Ranges<bigint>

  private constructor(entries: readonly Cidr[]) {
    this.entries = entries
    this.#v4 = merge(
      entries.flatMap((c) => (c.family === 4 ? [c] : [])),
      (x) => x + 1,
    )
    this.#v6 = merge(
      entries.flatMap((c) => (c.family === 6 ? [c] : [])),
      (x) => x + 1n,
    )
  }

  /** The list of these entries; config/cidr-list.ts reads one from configuration lines. */
  static of(entries: readonly Cidr[]): CidrList {
    return new CidrList(entries)
  }

  /** Whether a client address (IPv4, IPv6, IPv4-mapped IPv6, optional %zone) is in the list. */
  contains(ip: string): boolean {
    // Most lists (trusted proxies, XCLIENT clients) are empty: no need to parse the address.
    if (this.#v4.first.length === 0 && this.#v6.first.length === 0) return false
    const a = parseIp(ip)
    if (a === undefined) return false
    return a.family === 4 ? inRanges(this.#v4, a.value) : inRanges(this.#v6, a.value)
  }
}
