/**
 * What the logging plugins share: qpsmtpd's log line prefixes, preceded by the session id
 * (qpsmtpd forks one process per session, so its pid told sessions apart; one qtsmtpd process
 * serves many), and the `loglevel` and `format` arguments.
 */
import { type LogFormat, logFormats } from '../../host/log-json.ts'
import type { LogEntry, LogLevel } from '../../host/logger.ts'
import { parseLogLevel } from '../../host/logger.ts'
import { opt } from '../../host/options.ts'

/** `(hook) plugin:`, as qpsmtpd's core and logging/warn write it. */
export function qpsmtpdPrefix(e: LogEntry): string {
  const session = e.connection === undefined ? '' : ` ${e.connection}`
  const where =
    e.plugin !== undefined && e.hook !== undefined
      ? ` (${e.hook}) ${e.plugin}:`
      : e.plugin !== undefined
        ? ` ${e.plugin}:`
        : e.hook !== undefined
          ? ` (${e.hook}) running plugin:`
          : ''
  return session + where
}

/** `plugin plugin:` or `running plugin (hook):`, as qpsmtpd's older logging plugins write it. */
export function olderPrefix(e: LogEntry): string {
  if (e.plugin !== undefined) return ` ${e.plugin} plugin:`
  if (e.hook !== undefined) return ` running plugin (${e.hook}):`
  return ''
}

/** A qpsmtpd log level argument: 0-7, or a name with or without LOG (`LOGINFO`, `info`). */
export function logLevelOption(text: string): LogLevel {
  const level = parseLogLevel(text)
  if (level === undefined) throw new Error(`loglevel: expected 0-7 or LOGDEBUG..LOGEMERG, got "${text}"`)
  return level
}

export const formatOptionSpec = opt.optionalString({
  description: 'text (the default unless smtpd.conf says log_format json) or json (pino lines)',
})

/** The plugin's `format` argument, or the server's `log_format`. */
export function formatOption(text: string | undefined, serverFormat: LogFormat): LogFormat {
  if (text === undefined) return serverFormat
  const format = logFormats.find((f) => f === text.toLowerCase())
  if (format === undefined) throw new Error(`format: expected ${logFormats.join(' or ')}, got "${text}"`)
  return format
}
