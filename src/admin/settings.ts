/**
 * The admin listener's limits, from `admin_*` lines of config/smtpd.conf (docs/limits.md):
 * read once at start by the process that runs the listener (the primary with --workers, which
 * reads only these lines) and by each serving process for the recent-verdicts ring. A reload
 * checks them; a change takes effect at the next restart.
 */

import type { ConfigLine } from '../config/config-dir.ts'
import { ConfigError, combineConfigErrors } from '../config/config-error.ts'
import { parseDuration } from '../config/duration.ts'

/** Where the admin listener or the agent-check listens. */
export interface HostPort {
  readonly host: string
  readonly port: number
}

export interface AdminSettings {
  /** Status pages open at once (server-sent event streams); more get 503. */
  readonly sseClients: number
  /** Refusals and accepted messages each serving process keeps for the status page. */
  readonly recentVerdicts: number
  /** How long a scrape or a status update waits for the workers; the late ones' last counts are used. */
  readonly scrapeTimeoutMs: number
  /** Open connections, in percent of --max-connections (of all workers), from which the server reports overloaded. */
  readonly overloadPercent: number
  /** How often the status page is updated while one is open. */
  readonly updateIntervalMs: number
  /** Sessions per page of the status page and of `qtsmtpd status`: the most a request may ask. */
  readonly pageSize: number
}

export const defaultAdminSettings: AdminSettings = {
  sseClients: 8,
  recentVerdicts: 100,
  scrapeTimeoutMs: 2000,
  overloadPercent: 90,
  updateIntervalMs: 1000,
  pageSize: 50,
}

type Reader = (line: ConfigLine, value: string) => Partial<Record<keyof AdminSettings, number>>

const count =
  (key: keyof AdminSettings, min: number, max: number): Reader =>
  (line, value) => {
    const n = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN
    if (!(n >= min && n <= max)) throw bad(line, `expected a whole number from ${min} to ${max}, got "${value}"`)
    return { [key]: n }
  }

const duration =
  (key: keyof AdminSettings, minMs: number, maxMs: number): Reader =>
  (line, value) => {
    const ms = parseDuration(value)
    if (ms === undefined || ms < minMs || ms > maxMs)
      throw bad(line, `expected a duration from ${minMs}ms to ${maxMs / 1000}s (e.g. 2s, 500ms), got "${value}"`)
    return { [key]: ms }
  }

const readers: Readonly<Record<string, Reader>> = {
  admin_sse_clients: count('sseClients', 1, 1000),
  admin_recent_verdicts: count('recentVerdicts', 0, 10_000),
  admin_scrape_timeout: duration('scrapeTimeoutMs', 100, 60_000),
  admin_overload: count('overloadPercent', 1, 100),
  admin_update_interval: duration('updateIntervalMs', 200, 60_000),
  admin_page_size: count('pageSize', 1, 1000),
}

/** The `admin_*` keys, for core-settings (which leaves them to this reader) and `qtsmtpd config`. */
export const adminSettingKeys: readonly string[] = Object.keys(readers)

const bad = (line: ConfigLine, text: string): ConfigError =>
  new ConfigError('SMTPD_ERR_CONFIG_VALUE', line.file, line.line, `${/^\S+/.exec(line.text)?.[0]}: ${text}`)

/** Reads the `admin_*` lines of smtpd.conf; every bad one is thrown at once. */
export function readAdminSettings(smtpdConf: readonly ConfigLine[]): AdminSettings {
  const problems: ConfigError[] = []
  let settings = defaultAdminSettings
  for (const line of smtpdConf) {
    const m = /^(admin_[a-z_]+)\s+(.+)$/.exec(line.text)
    if (!m) continue
    const read = readers[m[1] as string]
    if (read === undefined) {
      problems.push(bad(line, `unknown setting (the admin settings are ${adminSettingKeys.join(', ')})`))
      continue
    }
    try {
      settings = { ...settings, ...read(line, (m[2] as string).trim()) }
    } catch (e) {
      problems.push(e as ConfigError)
    }
  }
  if (problems.length > 0) throw combineConfigErrors(problems)
  return settings
}
