/**
 * IP addresses as the rest of the server needs them: strict parsing (no octal, no zone tricks),
 * IPv4-mapped IPv6 (`::ffff:192.0.2.1`) folded to IPv4, RFC 5952 text, and the reversed names
 * of RFC 1035 §3.5 (`in-addr.arpa`) and RFC 3596 §2.5 (nibbles under `ip6.arpa`) that PTR
 * lookups and DNS lists (DNSBL, RFC 5782 §2.1 and §2.4) are built from.
 * Address lists (CIDR, qpsmtpd's prefixes) are cidr.ts, built on these parsers.
 */

export type IpAddress = { readonly family: 4; readonly value: number } | { readonly family: 6; readonly value: bigint }

const OCTET = /^(?:0|[1-9]\d{0,2})$/
const HEXTET = /^[0-9a-fA-F]{1,4}$/

/** Dotted quad, decimal octets without leading zeros (inet_aton reads those as octal). */
export function parseIPv4(s: string): number | undefined {
  const parts = s.split('.')
  if (parts.length !== 4) return undefined
  let n = 0
  for (const p of parts) {
    if (!OCTET.test(p)) return undefined
    const o = Number(p)
    if (o > 255) return undefined
    n = n * 256 + o
  }
  return n
}

/** RFC 4291 §2.2 text forms (with `::` and a trailing dotted quad) as a 128-bit bigint. */
export function parseIPv6(s: string): bigint | undefined {
  if (s.length > 45 || !s.includes(':')) return undefined
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const groups = (h: string | undefined): number[] | undefined => {
    if (h === undefined || h === '') return []
    const parts = h.split(':')
    const out: number[] = []
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] ?? ''
      if (i === parts.length - 1 && p.includes('.')) {
        const a = parseIPv4(p)
        if (a === undefined) return undefined
        out.push(a >>> 16, a & 0xffff)
      } else if (HEXTET.test(p)) out.push(Number.parseInt(p, 16))
      else return undefined
    }
    return out
  }
  const head = groups(halves[0])
  const tail = halves.length === 2 ? groups(halves[1]) : []
  if (head === undefined || tail === undefined) return undefined
  // A dotted quad may only end the address, not stand before `::`.
  if (halves.length === 2 && halves[0]?.includes('.')) return undefined
  const missing = 8 - head.length - tail.length
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined
  let n = 0n
  for (const g of [...head, ...Array<number>(missing).fill(0), ...tail]) n = (n << 16n) | BigInt(g)
  return n
}

/**
 * An address as a socket or a client gives it. IPv4-mapped IPv6 becomes IPv4 (a dual-stack
 * listener reports IPv4 clients that way); a zone (`fe80::1%eth0`) is dropped.
 */
export function parseIp(text: string): IpAddress | undefined {
  const v4 = parseIPv4(text)
  if (v4 !== undefined) return { family: 4, value: v4 }
  const zone = text.indexOf('%')
  const v6 = parseIPv6(zone < 0 ? text : text.slice(0, zone))
  if (v6 === undefined) return undefined
  if (v6 >> 32n === 0xffffn) return { family: 4, value: Number(v6 & 0xffffffffn) }
  return { family: 6, value: v6 }
}

export function formatIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

/**
 * RFC 5952 §4: lowercase, no leading zeros, the longest run (of two or more) of zero groups as
 * `::`; an IPv4-mapped address in the mixed notation of §5 (`::ffff:192.0.2.1`).
 */
export function formatIPv6(n: bigint): string {
  if (n >> 32n === 0xffffn) return `::ffff:${formatIPv4(Number(n & 0xffffffffn))}`
  const groups = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn))
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i]
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}

export function formatIp(ip: IpAddress): string {
  return ip.family === 4 ? formatIPv4(ip.value) : formatIPv6(ip.value)
}

/**
 * The canonical text of an address: `::ffff:1.2.3.4` → `1.2.3.4`, `2001:DB8:0::1` → `2001:db8::1`.
 * Undefined for text that is not an address.
 */
export function normalizeIp(text: string): string | undefined {
  const ip = parseIp(text)
  return ip === undefined ? undefined : formatIp(ip)
}

/**
 * A peer's address as the server shows it (logs, Received, rules): an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`, as a dual-stack listener reports IPv4 clients) becomes its IPv4 address;
 * any other text is kept as it is, a link-local address's zone (`fe80::1%eth0`) included.
 */
export function unmapIPv4(text: string): string {
  if (!/^::ffff:/i.test(text)) return text
  const v4 = text.slice(7)
  return parseIPv4(v4) === undefined ? text : v4
}

/**
 * The address's labels in reverse order, without a suffix: `192.0.2.1` → `1.2.0.192`, IPv6 as
 * 32 nibbles. A DNS list query is this plus `.` plus the list's zone (RFC 5782).
 */
export function reversedLabels(text: string | IpAddress): string | undefined {
  const ip = typeof text === 'string' ? parseIp(text) : text
  if (ip === undefined) return undefined
  if (ip.family === 4) {
    const n = ip.value
    return `${n & 255}.${(n >>> 8) & 255}.${(n >>> 16) & 255}.${n >>> 24}`
  }
  return ip.value.toString(16).padStart(32, '0').split('').reverse().join('.')
}

/** The PTR query name: `1.2.0.192.in-addr.arpa`, or the 32 nibbles under `ip6.arpa`. */
export function reverseName(text: string | IpAddress): string | undefined {
  const ip = typeof text === 'string' ? parseIp(text) : text
  if (ip === undefined) return undefined
  return `${reversedLabels(ip)}.${ip.family === 4 ? 'in-addr.arpa' : 'ip6.arpa'}`
}
