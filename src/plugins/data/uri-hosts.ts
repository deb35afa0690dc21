/**
 * The names a URI blocklist (SURBL, URIBL, Spamhaus DBL) is asked about, from a message's text:
 * the registrable domain (Public Suffix List, tldts) of every URL's host and of every bare
 * host name with a known public suffix (`www.example.com`, `user@example.net`), and the IPv4
 * addresses of URLs (`http://0x7f.1/`, `http://3232235777/` included: WHATWG URL parsing
 * normalizes them), reversed as SURBL lists them. Linear in the text: URLs are found by a
 * scheme of bounded length, bare names by splitting at characters no host name has.
 */
import { getDomain, parse } from 'tldts'

export interface UriNames {
  /** Registrable domains, lower case, in order of appearance. */
  readonly domains: readonly string[]
  /** IPv4 addresses found in URLs, as `1.2.0.192` (reversed). */
  readonly reversedIps: readonly string[]
}

const URL_PATTERN = /[a-z][a-z0-9+.-]{0,15}:\/\/[^\s"'<>()\\^`{|}]{1,2048}/gi
const NOT_HOST_CHAR = /[^a-z0-9.-]+/i
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

/** HTML's numeric character references (`&#104;ttp://`), undone so obfuscated URLs are seen. */
const decodeNumericEntities = (text: string): string =>
  text.replace(/&#(?:x([0-9a-f]{1,6})|(\d{1,7}));?/gi, (all, hex: string | undefined, dec: string | undefined) => {
    const code = hex !== undefined ? Number.parseInt(hex, 16) : Number(dec)
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : all
  })

export function uriNames(texts: readonly string[], limit: number): UriNames {
  const domains = new Set<string>()
  const ips = new Set<string>()
  const full = () => domains.size + ips.size >= limit
  const addHost = (host: string, requireKnownSuffix: boolean) => {
    if (full()) return
    const name = host.toLowerCase().replace(/\.$/, '')
    const info = parse(name)
    if (info.isIp === true) {
      if (requireKnownSuffix) return
      const octets = name.split('.')
      if (octets.length === 4) ips.add(octets.reverse().join('.'))
      return
    }
    if (requireKnownSuffix && info.isIcann !== true) return
    if (!name.split('.').every((l) => LABEL.test(l))) return
    for (const domain of [getDomain(name), getDomain(name, { allowPrivateDomains: true })])
      if (domain !== null && !full()) domains.add(domain)
  }
  for (const raw of texts) {
    const text = decodeNumericEntities(raw)
    for (const m of text.matchAll(URL_PATTERN)) {
      let url: URL
      try {
        url = new URL(m[0])
      } catch {
        continue
      }
      if (url.hostname !== '' && !url.hostname.startsWith('[')) addHost(url.hostname, false)
    }
    for (const token of text.split(NOT_HOST_CHAR)) {
      const t = token.replace(/^[.-]+|[.-]+$/g, '')
      if (t.length > 3 && t.length <= 253 && t.includes('.')) addHost(t, true)
    }
    if (full()) break
  }
  return { domains: [...domains], reversedIps: [...ips] }
}
