/**
 * The DNS service from the configuration: servers from `dns_servers` (one per line: `IP`,
 * `IP:port` or `[IPv6]:port`), else the `nameserver` lines of /etc/resolv.conf (resolv.conf(5):
 * none there means the local host); limits from `dns_*` lines of smtpd.conf (docs/limits.md).
 * A bad line stops the start with its file and line; resolv.conf belongs to the system, so its
 * unreadable lines are skipped as the C library skips them.
 */
import { readFileSync } from 'node:fs'
import type { ConfigLine } from '../config/config-dir.ts'
import { ConfigError } from '../config/config-error.ts'
import type { ConfigSource } from '../config/config-source.ts'
import { parseDuration } from '../config/duration.ts'
import { formatIp, parseIp } from '../net/ip.ts'
import { createDnsCache, type DnsCacheOptions, defaultCacheOptions } from './cache.ts'
import { createStubResolver, defaultStubOptions, type StubResolverOptions } from './stub-resolver.ts'
import type { DnsServer } from './transport.ts'
import type { DnsService } from './types.ts'

export interface DnsSettings {
  readonly resolver: Omit<StubResolverOptions, 'servers'>
  readonly cache: DnsCacheOptions
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }
type Reader = (line: ConfigLine, value: string, settings: Mutable<DnsSettings>) => void

const count = (min: number, max: number, apply: (s: Mutable<DnsSettings>, n: number) => void): Reader => {
  return (line, value, settings) => {
    const n = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN
    if (!(n >= min && n <= max)) throw bad(line, `expected a whole number from ${min} to ${max}, got "${value}"`)
    apply(settings, n)
  }
}

const duration = (minMs: number, apply: (s: Mutable<DnsSettings>, ms: number) => void): Reader => {
  return (line, value, settings) => {
    const ms = parseDuration(value)
    if (ms === undefined || ms < minMs) throw bad(line, `expected a duration such as 5s or 1500ms, got "${value}"`)
    apply(settings, ms)
  }
}

/** The smtpd.conf keys of the DNS layer; the core's reader leaves them to this one. */
export const dnsSettingReaders: Readonly<Record<string, Reader>> = {
  dns_timeout: duration(1, (s, ms) => (s.resolver = { ...s.resolver, timeoutMs: ms })),
  dns_retries: count(0, 10, (s, n) => (s.resolver = { ...s.resolver, retries: n })),
  dns_edns_size: (line, value, settings) => {
    const n = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN
    if (!(n === 0 || (n >= 512 && n <= 65_535)))
      throw bad(line, `expected 0 (no EDNS0) or a size from 512 to 65535, got "${value}"`)
    settings.resolver = { ...settings.resolver, ednsUdpSize: n }
  },
  dns_answer_size_limit: count(512, 65_535, (s, n) => (s.resolver = { ...s.resolver, maxAnswerSize: n })),
  dns_max_inflight: count(1, 65_535, (s, n) => (s.resolver = { ...s.resolver, maxInflight: n })),
  dns_cname_limit: count(0, 64, (s, n) => (s.resolver = { ...s.resolver, cnameLimit: n })),
  dns_cache_size: count(0, 10_000_000, (s, n) => (s.cache = { ...s.cache, maxEntries: n })),
  dns_cache_max_ttl: duration(0, (s, ms) => (s.cache = { ...s.cache, maxTtl: Math.floor(ms / 1000) })),
  dns_cache_max_negative_ttl: duration(0, (s, ms) => (s.cache = { ...s.cache, maxNegativeTtl: Math.floor(ms / 1000) })),
}
export const dnsSettingKeys: readonly string[] = Object.keys(dnsSettingReaders)

const bad = (l: ConfigLine, text: string) => new ConfigError('SMTPD_ERR_CONFIG_VALUE', l.file, l.line, text)

export function readDnsSettings(source: ConfigSource): DnsSettings {
  const settings: Mutable<DnsSettings> = { resolver: { ...defaultStubOptions }, cache: { ...defaultCacheOptions } }
  for (const line of source.lines('smtpd.conf') ?? []) {
    const m = /^(dns_[a-z0-9_]+)\s+(.+)$/.exec(line.text)
    if (!m) continue
    const reader = dnsSettingReaders[m[1] ?? '']
    if (reader === undefined) throw bad(line, `unknown setting "${m[1]}" (see docs/limits.md)`)
    reader(line, m[2] ?? '', settings)
  }
  return settings
}

/** One `dns_servers` line: `192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53`, `[2001:db8::53]:5353`. */
export function parseServer(text: string): DnsServer | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text)
  const v4WithPort = /^([\d.]+):(\d{1,5})$/.exec(text)
  const [addressText, portText] = bracketed
    ? [bracketed[1] ?? '', bracketed[2]]
    : v4WithPort
      ? [v4WithPort[1] ?? '', v4WithPort[2]]
      : [text, undefined]
  const ip = parseIp(addressText)
  const port = portText === undefined ? 53 : Number(portText)
  if (ip === undefined || port < 1 || port > 65_535) return undefined
  const zone = ip.family === 6 && addressText.includes('%') ? addressText.slice(addressText.indexOf('%')) : ''
  return { address: formatIp(ip) + zone, port }
}

/** The `nameserver` lines of a resolv.conf text; the local host when there are none. */
export function parseResolvConf(text: string): DnsServer[] {
  const servers: DnsServer[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line)
    const server = m?.[1] === undefined ? undefined : parseServer(m[1])
    if (server !== undefined) servers.push({ ...server, port: 53 })
  }
  return servers.length > 0 ? servers : [{ address: '127.0.0.1', port: 53 }]
}

export function readDnsServers(source: ConfigSource, resolvConf = '/etc/resolv.conf'): DnsServer[] {
  const lines = source.lines('dns_servers') ?? []
  if (lines.length === 0) {
    let text = ''
    try {
      text = readFileSync(resolvConf, 'utf8')
    } catch {
      // resolv.conf(5): without the file, the name server on the local machine is used.
    }
    return parseResolvConf(text)
  }
  return lines.map((line) => {
    const server = parseServer(line.text)
    if (server === undefined) throw bad(line, `expected IP, IP:port or [IPv6]:port, got "${line.text}"`)
    return server
  })
}

/**
 * The process's resolver and cache, as configured; build it once and hand it to every plugin.
 *
 * @example
 * const dns = createDnsService(configDir)
 * const answer = await dns.query('example.com', 'MX', { signal })
 */
export function createDnsService(
  source: ConfigSource,
  opts: { readonly resolvConf?: string; readonly now?: () => number } = {},
): DnsService {
  const settings = readDnsSettings(source)
  const servers = readDnsServers(source, opts.resolvConf)
  const resolver = createStubResolver({ ...settings.resolver, servers })
  return createDnsCache(resolver, opts.now === undefined ? settings.cache : { ...settings.cache, now: opts.now })
}
