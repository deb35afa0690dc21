/**
 * qpsmtpd's log line prefix for the logging plugins: `(hook) plugin:` as qpsmtpd's core writes
 * it, preceded by the session id. qpsmtpd forks one process per session, so its pid told sessions
 * apart; one qtsmtpd process serves many, hence the session id.
 */
import type { LogEntry, LogLevel } from '../../host/logger.ts'
import { parseLogLevel } from '../../host/logger.ts'

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

/** A qpsmtpd log level argument: 0-7, or a name with or without LOG (`LOGINFO`, `info`). */
export function logLevelOption(text: string): LogLevel {
  const level = parseLogLevel(text)
  if (level === undefined) throw new Error(`loglevel: expected 0-7 or LOGDEBUG..LOGEMERG, got "${text}"`)
  return level
}
