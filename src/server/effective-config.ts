/**
 * `qtsmtpd config`: the effective configuration of a configuration directory, one `key = value`
 * per setting as Postfix's postconf prints it, every setting with its default filled in; `-n`
 * only those the operator set (in smtpd.conf or in qpsmtpd's own files: `databytes` sets
 * message_size_limit), `-d` every default. The directory is read and checked as a start would
 * (plugins chosen and their options checked, nothing set up), so a broken one gives its errors.
 */
import { join } from 'node:path'
import { defaultAdminSettings, readAdminSettings } from '../admin/settings.ts'
import type { ConfigSource } from '../config/config-source.ts'
import { defaultCacheOptions } from '../dns/cache.ts'
import { readDnsServers, readDnsSettings } from '../dns/config.ts'
import { defaultStubOptions } from '../dns/stub-resolver.ts'
import { serverText } from '../dns/transport.ts'
import { defaultMaxSeries } from '../metrics/index.ts'
import { defaultLimits, defaultPolicies, defaultTimeouts } from '../session/settings.ts'
import { defaultStoreFile } from '../store/spec.ts'
import { limitKeys, policyKeys, readCoreSettings, timeoutKeys } from './core-settings.ts'
import { type LoadedConfig, readConfigDir } from './load-config.ts'

export interface EffectiveSetting {
  readonly key: string
  readonly value: string
  readonly defaultValue: string
  /** Set by the operator (a line of smtpd.conf, or a qpsmtpd file such as `databytes`). */
  readonly set: boolean
}

export interface EffectiveConfig {
  readonly settings: readonly EffectiveSetting[]
  /** config/logging and config/plugins lines, in load order, as written. */
  readonly plugins: readonly string[]
}

/** Durations as smtpd.conf takes them: whole seconds as `300s`, the rest as `1500ms`. */
const duration = (ms: number): string => (ms === 0 ? '0' : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`)
const yesNo = (b: boolean): string => (b ? 'yes' : 'no')

/** The qpsmtpd files that set a core setting, by the setting's smtpd.conf name. */
const qpsmtpdFiles: Readonly<Record<string, readonly string[]>> = {
  message_size_limit: ['databytes'],
  command_timeout: ['timeoutsmtpd', 'timeout'],
  auth_requires_tls: ['tls_before_auth'],
  spool_memory_threshold: ['size_threshold'],
}

export async function effectiveConfig(dir: string, fallbackDirs: readonly string[] = []): Promise<EffectiveConfig> {
  const loaded = await readConfigDir(dir, { fallbackDirs })
  const source = loaded.source
  const conf = source.lines('smtpd.conf') ?? []
  const inConf = (key: string) => conf.some((l) => new RegExp(`^${key}\\s`).test(l.text))
  const inFile = (file: string) => (source.lines(file) ?? []).length > 0
  const isSet = (key: string) => inConf(key) || (qpsmtpdFiles[key] ?? []).some(inFile)
  const out: EffectiveSetting[] = []
  const add = (key: string, value: string, defaultValue: string, set = isSet(key)) =>
    out.push({ key, value, defaultValue, set })

  const s = loaded.settings
  const core = readCoreSettings(source, { baseDir: loaded.baseDir })
  add('me', s.me, '(this host name)', inFile('me'))
  add('smtpgreeting', s.greeting, '(me) ESMTP qtsmtpd ready', inFile('smtpgreeting'))
  add('spool_dir', s.spoolDir, '(the temporary directory)/qtsmtpd-spool', inFile('spool_dir'))
  add('loglevel', String(loaded.logLevel), '4', inFile('loglevel'))
  add('log_format', loaded.logFormat, 'text')
  add('plugin_dirs', loaded.pluginDirs.join(' '), '', inFile('plugin_dirs'))
  add(
    'plugin_timeout',
    [
      ...(core.pluginTimeouts.fallbackMs === undefined ? [] : [duration(core.pluginTimeouts.fallbackMs)]),
      ...[...core.pluginTimeouts.byName].map(([name, ms]) => `${name} ${duration(ms)}`),
    ].join(', '),
    '',
  )
  for (const [key, field] of Object.entries(limitKeys)) add(key, String(s.limits[field]), String(defaultLimits[field]))
  add('spool_memory_threshold', String(s.spoolMemoryThreshold), '262144')
  for (const [key, field] of Object.entries(timeoutKeys))
    add(key, duration(s.timeouts[field]), duration(defaultTimeouts[field]))
  add('min_data_rate', String(s.timeouts.minDataRate), String(defaultTimeouts.minDataRate))
  add('bare_line_endings', s.policies.bareLineEndings, defaultPolicies.bareLineEndings)
  for (const [key, field] of Object.entries(policyKeys))
    add(key, yesNo(s.policies[field] as boolean), yesNo(defaultPolicies[field] as boolean))
  servicesSettings(loaded, add)
  adminSettings(conf, add)

  const plugins = [...(source.lines('logging') ?? []), ...(source.lines('plugins') ?? [])].map((l) => l.text)
  return { settings: out, plugins }
}

type Add = (key: string, value: string, defaultValue: string, set?: boolean) => void

function servicesSettings(loaded: LoadedConfig, add: Add): void {
  const source: ConfigSource = loaded.source
  const store = (source.lines('smtpd.conf') ?? []).find((l) => /^store\s/.test(l.text))
  const defaultStore = `sqlite:${join(loaded.settings.spoolDir, defaultStoreFile)}`
  add('store', store?.text.replace(/^store\s+/, '') ?? defaultStore, `sqlite:(spool_dir)/${defaultStoreFile}`)
  const series = (source.lines('smtpd.conf') ?? []).find((l) => /^metrics_max_series\s/.test(l.text))
  add(
    'metrics_max_series',
    series?.text.replace(/^metrics_max_series\s+/, '') ?? String(defaultMaxSeries),
    String(defaultMaxSeries),
  )
  const dns = readDnsSettings(source)
  const r = dns.resolver
  const d = defaultStubOptions
  add(
    'dns_servers',
    readDnsServers(source).map(serverText).join(' '),
    '(the nameservers of /etc/resolv.conf)',
    (source.lines('dns_servers') ?? []).length > 0,
  )
  add('dns_timeout', duration(r.timeoutMs), duration(d.timeoutMs))
  add('dns_retries', String(r.retries), String(d.retries))
  add('dns_edns_size', String(r.ednsUdpSize), String(d.ednsUdpSize))
  add('dns_answer_size_limit', String(r.maxAnswerSize), String(d.maxAnswerSize))
  add('dns_max_inflight', String(r.maxInflight), String(d.maxInflight))
  add('dns_cname_limit', String(r.cnameLimit), String(d.cnameLimit))
  const c = dns.cache
  const dc = defaultCacheOptions
  add('dns_cache_size', String(c.maxEntries), String(dc.maxEntries))
  add('dns_cache_max_ttl', duration(c.maxTtl * 1000), duration(dc.maxTtl * 1000))
  add('dns_cache_max_negative_ttl', duration(c.maxNegativeTtl * 1000), duration(dc.maxNegativeTtl * 1000))
}

function adminSettings(conf: Parameters<typeof readAdminSettings>[0], add: Add): void {
  const a = readAdminSettings(conf)
  const d = defaultAdminSettings
  add('admin_scrape_timeout', duration(a.scrapeTimeoutMs), duration(d.scrapeTimeoutMs))
  add('admin_sse_clients', String(a.sseClients), String(d.sseClients))
  add('admin_update_interval', duration(a.updateIntervalMs), duration(d.updateIntervalMs))
  add('admin_page_size', String(a.pageSize), String(d.pageSize))
  add('admin_recent_verdicts', String(a.recentVerdicts), String(d.recentVerdicts))
  add('admin_overload', String(a.overloadPercent), String(d.overloadPercent))
}

/** The lines `qtsmtpd config` prints: `key = value`, then the plugins, one per line. */
export function renderConfig(c: EffectiveConfig, mode: 'all' | 'set' | 'defaults'): string {
  const lines: string[] = []
  for (const s of c.settings) {
    if (mode === 'set' && !s.set) continue
    lines.push(`${s.key} = ${mode === 'defaults' ? s.defaultValue : s.value}`.trimEnd())
  }
  if (mode !== 'defaults') lines.push('plugins =', ...c.plugins.map((p) => `    ${p}`))
  return `${lines.join('\n')}\n`
}
