/**
 * Syslog messages as logging/syslog sends them. Remote (UDP, TCP): RFC 5424, `<PRI>1 TIMESTAMP
 * HOSTNAME APP-NAME PROCID - - MSG` (no structured data, no BOM), or RFC 3164's `<PRI>Mmm dd
 * hh:mm:ss HOSTNAME TAG[PID]: MSG` for older receivers. The local socket gets glibc syslog(3)'s
 * form, `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`, written by util-linux logger (syslog-transports.ts).
 * TCP framing (RFC 6587): octet counting, `LEN SP MSG`, or a newline after each message.
 */
import type { LogLevel } from '../../host/logger.ts'
import { strftime } from './strftime.ts'

/** RFC 5424 §6.2.1 facilities by their syslog(3) names, with or without LOG_. */
export const facilities: Readonly<Record<string, number>> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
}

/** syslog(3) severities; qpsmtpd's levels have the same numbers (LOGERROR = LOG_ERR = 3). */
const severities: Readonly<Record<string, LogLevel>> = {
  emerg: 0,
  alert: 1,
  crit: 2,
  err: 3,
  error: 3,
  warning: 4,
  warn: 4,
  notice: 5,
  info: 6,
  debug: 7,
}

export function parseFacility(text: string): number {
  const f = facilities[text.toLowerCase().replace(/^log_/, '')]
  if (f === undefined)
    throw new Error(`facility: expected LOG_MAIL, LOG_LOCAL0..7 or another syslog(3) facility, got "${text}"`)
  return f
}

/** `LOG_NOTICE`, `notice`, `LOGNOTICE` or 0-7. */
export function parseSeverity(text: string): LogLevel {
  const t = text.toLowerCase().replace(/^log_?/, '')
  if (/^[0-7]$/.test(t)) return Number(t) as LogLevel
  const s = severities[t]
  if (s === undefined) throw new Error(`priority: expected LOG_EMERG..LOG_DEBUG or 0-7, got "${text}"`)
  return s
}

/** At most `max` bytes of UTF-8, never cutting a character. */
export function truncateUtf8(text: string, max: number): Buffer {
  const bytes = Buffer.from(text)
  if (bytes.length <= max) return bytes
  let end = max
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--
  return bytes.subarray(0, end)
}

export interface SyslogHeader {
  readonly facility: number
  readonly hostname: string
  readonly appName: string
  readonly pid: number
}

const bsdTime = (d: Date): string => strftime('%b %e %T', d)

export function rfc5424(h: SyslogHeader, severity: LogLevel, time: Date, msg: Buffer): Buffer {
  const head = `<${h.facility * 8 + severity}>1 ${time.toISOString()} ${h.hostname} ${h.appName} ${h.pid} - - `
  return Buffer.concat([Buffer.from(head), msg])
}

export function rfc3164(h: SyslogHeader, severity: LogLevel, time: Date, msg: Buffer): Buffer {
  const head = `<${h.facility * 8 + severity}>${bsdTime(time)} ${h.hostname} ${h.appName}[${h.pid}]: `
  return Buffer.concat([Buffer.from(head), msg])
}

export type Framing = 'octet-counting' | 'newline'

export function frame(message: Buffer, framing: Framing): Buffer {
  if (framing === 'newline') return Buffer.concat([message, Buffer.from('\n')])
  return Buffer.concat([Buffer.from(`${message.length} `), message])
}

/** RFC 5424's HOSTNAME: printable US-ASCII, at most 255; `-` when `me` is not. */
export const syslogHostname = (me: string): string => (/^[!-~]{1,255}$/.test(me) ? me : '-')
