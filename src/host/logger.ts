/**
 * Logging with qpsmtpd's levels (0 emerg … 7 debug, default 4 = warn). Entries go to the
 * `logging` hook of logging plugins when any is loaded, otherwise to stderr, as in qpsmtpd.
 * Control characters in messages are escaped, so client data cannot forge log lines.
 */

export const LogLevels = { emerg: 0, alert: 1, crit: 2, error: 3, warn: 4, notice: 5, info: 6, debug: 7 } as const
export type LogLevelName = keyof typeof LogLevels
export type LogLevel = (typeof LogLevels)[LogLevelName]

export interface LogEntry {
  readonly level: LogLevel
  readonly time: Date
  readonly message: string
  readonly connection?: string | undefined
  /** The transaction (its queue id) the entry is about, when a plugin logs in a transaction hook. */
  readonly transaction?: string | undefined
  readonly plugin?: string | undefined
  readonly hook?: string | undefined
}

export type LogWriter = (entry: LogEntry) => void

export interface Logger {
  readonly level: LogLevel
  enabled(level: LogLevel): boolean
  log(level: LogLevel, message: string): void
  debug(message: string): void
  info(message: string): void
  notice(message: string): void
  warn(message: string): void
  error(message: string): void
  crit(message: string): void
  child(fields: LoggerFields & { level?: LogLevel }): Logger
}

const escapeControls = (s: string): string =>
  s.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\t' ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`))

const levelNames = Object.fromEntries(Object.entries(LogLevels).map(([k, v]) => [v, k])) as Record<LogLevel, string>

export function formatLogEntry(e: LogEntry): string {
  const where = [e.connection, e.plugin, e.hook].filter((x) => x !== undefined).join(' ')
  return `${e.time.toISOString()} ${levelNames[e.level]} ${where ? `[${where}] ` : ''}${e.message}`
}

export const stderrWriter: LogWriter = (e) => {
  process.stderr.write(`${formatLogEntry(e)}\n`)
}

export function parseLogLevel(text: string): LogLevel | undefined {
  const t = text.trim().toLowerCase()
  if (/^[0-7]$/.test(t)) return Number(t) as LogLevel
  const byName = (LogLevels as Record<string, LogLevel>)[t.replace(/^log/, '')]
  return byName
}

/**
 * qpsmtpd's per-plugin `loglevel` argument: every entry of the plugin is written at `level`
 * (absolute), or `by` levels less severe (relative; negative is more severe), within 0-7.
 */
export type LogLevelAdjustment =
  | { readonly kind: 'absolute'; readonly level: LogLevel }
  | { readonly kind: 'relative'; readonly by: number }

/** `N` (0-7), a level name (`info`, `LOGINFO`), or `+N`/`-N`; undefined when it is none of these. */
export function parseLogLevelAdjustment(text: string): LogLevelAdjustment | undefined {
  const t = text.trim()
  const relative = /^([+-])(\d)$/.exec(t)
  if (relative) return { kind: 'relative', by: Number(relative[2]) * (relative[1] === '-' ? -1 : 1) }
  const level = parseLogLevel(t)
  return level === undefined ? undefined : { kind: 'absolute', level }
}

export function adjustLogLevel(adjustment: LogLevelAdjustment | undefined, level: LogLevel): LogLevel {
  if (adjustment === undefined) return level
  if (adjustment.kind === 'absolute') return adjustment.level
  return Math.min(7, Math.max(0, level + adjustment.by)) as LogLevel
}

export interface LoggerFields {
  connection?: string
  transaction?: string | undefined
  plugin?: string
  hook?: string
  /** Rewrites the level of every entry of this logger and its children (per-plugin `loglevel`). */
  adjust?: LogLevelAdjustment | undefined
}

/** `level` may be a function, so a runtime can widen it once logging plugins are known. */
export function createLogger(writer: LogWriter, level: LogLevel | (() => LogLevel), fields: LoggerFields = {}): Logger {
  const current = typeof level === 'function' ? level : () => level
  const { adjust, ...where } = fields
  const log = (given: LogLevel, message: string): void => {
    const l = adjustLogLevel(adjust, given)
    if (l > current()) return
    writer({ level: l, time: new Date(), message: escapeControls(message), ...where })
  }
  return {
    get level() {
      return current()
    },
    enabled: (l) => adjustLogLevel(adjust, l) <= current(),
    log,
    debug: (m) => log(7, m),
    info: (m) => log(6, m),
    notice: (m) => log(5, m),
    warn: (m) => log(4, m),
    error: (m) => log(3, m),
    crit: (m) => log(2, m),
    child: (more) => createLogger(writer, more.level ?? level, { ...fields, ...stripLevel(more) }),
  }
}

function stripLevel(f: LoggerFields & { level?: LogLevel }): LoggerFields {
  const { level: _level, ...rest } = f
  return rest
}
