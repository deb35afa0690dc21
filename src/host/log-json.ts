/**
 * The JSON-lines log format (`log_format json`): one object per line in pino's shape, so that
 * pino-pretty and pino's piped transports (pino-elasticsearch, pino-socket, pino-syslog) read it:
 * `level` (pino's numbers), `time` (ms since the epoch), `pid`, `hostname`, the bound fields
 * (`session`, `txn`, `plugin`, `hook`), then `msg`. docs/operations.md has the level table.
 */
import { hostname } from 'node:os'
import type { LogEntry, LogLevel, LogWriter } from './logger.ts'

export type LogFormat = 'text' | 'json'
export const logFormats: readonly LogFormat[] = ['text', 'json']

/** qpsmtpd's eight levels on pino's six: pino has no notice, and one level above error. */
export const pinoLevels: Readonly<Record<LogLevel, number>> = { 0: 60, 1: 60, 2: 60, 3: 50, 4: 40, 5: 30, 6: 30, 7: 20 }

const host = JSON.stringify(hostname())

export function pinoLine(e: LogEntry, pid: number = process.pid): string {
  let line = `{"level":${pinoLevels[e.level]},"time":${e.time.getTime()},"pid":${pid},"hostname":${host}`
  if (e.connection !== undefined) line += `,"session":${JSON.stringify(e.connection)}`
  if (e.transaction !== undefined) line += `,"txn":${JSON.stringify(e.transaction)}`
  if (e.plugin !== undefined) line += `,"plugin":${JSON.stringify(e.plugin)}`
  if (e.hook !== undefined) line += `,"hook":${JSON.stringify(e.hook)}`
  return `${line},"msg":${JSON.stringify(e.message)}}\n`
}

export const jsonStderrWriter: LogWriter = (e) => {
  process.stderr.write(pinoLine(e))
}
