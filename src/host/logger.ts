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
  child(fields: { connection?: string; plugin?: string; hook?: string; level?: LogLevel }): Logger
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

/** `level` may be a function, so a runtime can widen it once logging plugins are known. */
export function createLogger(
  writer: LogWriter,
  level: LogLevel | (() => LogLevel),
  fields: { connection?: string; plugin?: string; hook?: string } = {},
): Logger {
  const current = typeof level === 'function' ? level : () => level
  const log = (l: LogLevel, message: string): void => {
    if (l > current()) return
    writer({ level: l, time: new Date(), message: escapeControls(message), ...fields })
  }
  return {
    get level() {
      return current()
    },
    enabled: (l) => l <= current(),
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

function stripLevel(f: { connection?: string; plugin?: string; hook?: string; level?: LogLevel }) {
  const { level: _level, ...rest } = f
  return rest
}
