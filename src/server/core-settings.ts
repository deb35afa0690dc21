/**
 * Core settings from qpsmtpd's flat files (`me`, `smtpgreeting`, `databytes`, `timeout`,
 * `timeoutsmtpd`, `size_threshold`, `spool_dir`, `tls_before_auth`) and from qtsmtpd's own
 * `smtpd.conf` (`key value` lines for every limit, timeout and policy; docs/limits.md).
 * Every value is validated; an error names the file and line.
 */
import { hostname, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { ConfigLine } from '../config/config-dir.ts'
import { ConfigError, collecting, combineConfigErrors } from '../config/config-error.ts'
import type { ConfigSource } from '../config/config-source.ts'
import { parseDuration } from '../config/duration.ts'
import type { PluginTimeouts } from '../host/loader.ts'
import { type LogFormat, logFormats } from '../host/log-json.ts'
import type { LogLevel } from '../host/logger.ts'
import { parseLogLevel } from '../host/logger.ts'
import {
  defaultLimits,
  defaultPolicies,
  defaultTimeouts,
  type Limits,
  type Policies,
  type SessionSettings,
  type Timeouts,
} from '../session/settings.ts'

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

export const limitKeys: Readonly<Record<string, keyof Limits>> = {
  command_line_limit: 'commandLine',
  auth_line_limit: 'authLine',
  message_size_limit: 'messageSize',
  data_line_limit: 'dataLine',
  header_size_limit: 'headerSize',
  recipient_limit: 'recipients',
  recipient_overshoot_limit: 'recipientOvershoot',
  hop_limit: 'hops',
  unknown_command_limit: 'unknownCommands',
  junk_command_limit: 'junkCommands',
  soft_error_limit: 'softErrors',
  hard_error_limit: 'hardErrors',
  auth_failure_limit: 'authFailures',
  messages_per_session: 'messagesPerSession',
  commands_per_session: 'commandsPerSession',
}

export const timeoutKeys: Readonly<Record<string, keyof Timeouts>> = {
  command_timeout: 'commandMs',
  data_timeout: 'dataMs',
  session_timeout: 'sessionMs',
  tls_handshake_timeout: 'tlsHandshakeMs',
  error_delay: 'errorDelayMs',
  auth_failure_delay: 'authFailureDelayMs',
  greeting_delay: 'greetingDelayMs',
}

export const policyKeys: Readonly<Record<string, keyof Policies>> = {
  enforce_sync: 'enforceSync',
  auth_requires_tls: 'authRequiresTls',
  strict_envelopes: 'strictEnvelopes',
  smtputf8: 'smtputf8',
  chunking: 'chunking',
  dsn: 'dsn',
  requiretls: 'requireTlsExtension',
  tls_required: 'tlsRequired',
  auth_required: 'authRequired',
}

export interface CoreSettings {
  readonly session: SessionSettings
  readonly logLevel: LogLevel
  readonly logFormat: LogFormat
  readonly pluginDirs: readonly string[]
  readonly pluginTimeouts: PluginTimeouts
}

const err = (l: ConfigLine, text: string) => new ConfigError('SMTPD_ERR_CONFIG_VALUE', l.file, l.line, text)

function parseCount(l: ConfigLine, text: string): number {
  if (!/^\d{1,15}$/.test(text)) throw err(l, `expected a whole number, got "${text}"`)
  return Number(text)
}

function parseBool(l: ConfigLine, text: string): boolean {
  const t = text.toLowerCase()
  if (['1', 'yes', 'true', 'on'].includes(t)) return true
  if (['0', 'no', 'false', 'off'].includes(t)) return false
  throw err(l, `expected yes or no, got "${text}"`)
}

export function readCoreSettings(source: ConfigSource, opts: { baseDir?: string } = {}): CoreSettings {
  const problems: ConfigError[] = []
  const core = readCoreSettingsCollecting(source, opts, problems)
  if (problems.length > 0) throw combineConfigErrors(problems)
  return core
}

/**
 * As readCoreSettings, but every bad line is added to `problems` and its setting keeps the
 * default, so that one start reports all of them.
 */
export function readCoreSettingsCollecting(
  source: ConfigSource,
  opts: { baseDir?: string },
  problems: ConfigError[],
): CoreSettings {
  const attempt = <T>(f: () => T): T | undefined => collecting(problems, f)
  const lines = (key: string) => attempt(() => source.lines(key)) ?? []
  const first = (key: string) => lines(key)[0]
  const limits: Mutable<Limits> = { ...defaultLimits }
  const timeouts: Mutable<Timeouts> = { ...defaultTimeouts }
  const policies: Mutable<Policies> = { ...defaultPolicies }
  const base = opts.baseDir ?? process.cwd()

  const me = first('me')?.text ?? hostname()
  const authResultsLine = first('me-auth-results')
  const authservId = authResultsLine === undefined ? me : authResultsLine.text === 'none' ? null : authResultsLine.text
  const greetingLine = first('smtpgreeting')
  const greeting = greetingLine?.text ?? `${me} ESMTP qtsmtpd ready`
  const databytes = first('databytes')
  if (databytes) attempt(() => (limits.messageSize = parseCount(databytes, databytes.text)))
  const timeout = first('timeoutsmtpd') ?? first('timeout')
  if (timeout) attempt(() => (timeouts.commandMs = parseCount(timeout, timeout.text) * 1000))
  const tlsBeforeAuth = first('tls_before_auth')
  if (tlsBeforeAuth) attempt(() => (policies.authRequiresTls = parseBool(tlsBeforeAuth, tlsBeforeAuth.text)))
  let spoolMemoryThreshold = 262_144
  const threshold = first('size_threshold')
  if (threshold) attempt(() => (spoolMemoryThreshold = parseCount(threshold, threshold.text)))
  const spoolLine = first('spool_dir')
  const spoolDir = spoolLine ? resolve(base, spoolLine.text) : join(tmpdir(), 'qtsmtpd-spool')
  let logLevel: LogLevel = 4
  const levelLine = first('loglevel')
  if (levelLine) {
    const l = parseLogLevel(levelLine.text)
    if (l === undefined) problems.push(err(levelLine, `unknown log level "${levelLine.text}"`))
    else logLevel = l
  }

  let logFormat: LogFormat = 'text'
  let pluginFallbackMs: number | undefined
  const pluginTimeouts = new Map<string, number>()
  for (const line of lines('smtpd.conf')) {
    attempt(() => {
      const m = /^([a-z0-9_]+)\s+(.+)$/.exec(line.text)
      if (!m) throw err(line, `expected "key value", got "${line.text}"`)
      const [, key = '', value = ''] = m
      if (key in limitKeys) {
        const n = parseCount(line, value)
        if (key === 'command_line_limit' && n < 512)
          throw err(line, 'command_line_limit must be at least 512 (RFC 5321)')
        limits[limitKeys[key] as keyof Limits] = n
      } else if (key in timeoutKeys) {
        const ms = parseDuration(value)
        if (ms === undefined) throw err(line, `expected a duration such as 300s, 5m or 1500ms, got "${value}"`)
        timeouts[timeoutKeys[key] as keyof Timeouts] = ms
      } else if (key in policyKeys) policies[policyKeys[key] as keyof Policies] = parseBool(line, value) as never
      else if (key === 'plugin_timeout') {
        const [first = '', second] = value.split(/\s+/)
        const ms = parseDuration(second ?? first)
        if (ms === undefined || ms === 0)
          throw err(line, `expected "plugin_timeout [PLUGIN] DURATION" with a duration such as 10s, got "${value}"`)
        if (second === undefined) pluginFallbackMs = ms
        else pluginTimeouts.set(first, ms)
      } else if (key === 'min_data_rate') timeouts.minDataRate = parseCount(line, value)
      else if (key === 'bare_line_endings') {
        if (value !== 'reject' && value !== 'normalize') throw err(line, `expected reject or normalize, got "${value}"`)
        policies.bareLineEndings = value
      } else if (key === 'log_format') {
        const format = logFormats.find((f) => f === value)
        if (format === undefined) throw err(line, `expected ${logFormats.join(' or ')}, got "${value}"`)
        logFormat = format
      } else if (key === 'spool_memory_threshold') spoolMemoryThreshold = parseCount(line, value)
      // The process's services read their own lines (server/process-services.ts): the store,
      // the metrics registry's limit, the DNS layer, which refuses a dns_ key it does not know,
      // and the admin listener's limits (admin/settings.ts).
      else if (key === 'store' || key === 'metrics_max_series' || key.startsWith('dns_') || key.startsWith('admin_'))
        return
      else throw err(line, `unknown setting "${key}" (see docs/limits.md)`)
    })
  }
  const pluginDirs = lines('plugin_dirs').map((l) => resolve(base, l.text))
  return {
    session: { me, authservId, greeting, limits, timeouts, policies, spoolDir, spoolMemoryThreshold },
    logLevel,
    logFormat,
    pluginDirs,
    pluginTimeouts: { fallbackMs: pluginFallbackMs, byName: pluginTimeouts },
  }
}

/** Settings for code and tests: defaults with overrides. */
export function sessionSettings(overrides: {
  me?: string
  greeting?: string
  limits?: Partial<Limits>
  timeouts?: Partial<Timeouts>
  policies?: Partial<Policies>
  spoolDir?: string
  spoolMemoryThreshold?: number
}): SessionSettings {
  const me = overrides.me ?? 'localhost'
  return {
    me,
    greeting: overrides.greeting ?? `${me} ESMTP qtsmtpd ready`,
    limits: { ...defaultLimits, ...overrides.limits },
    timeouts: { ...defaultTimeouts, ...overrides.timeouts },
    policies: { ...defaultPolicies, ...overrides.policies },
    spoolDir: overrides.spoolDir ?? join(tmpdir(), 'qtsmtpd-spool'),
    spoolMemoryThreshold: overrides.spoolMemoryThreshold ?? 262_144,
  }
}
