/**
 * logging/syslog: log entries to syslog (qpsmtpd `logging/syslog [loglevel L] [priority P]
 * [ident S] [facility F] [logsock T]`), to the local socket or to a remote receiver:
 * - `logsock unix` (the default; also `native`, `stream`): /dev/log (or `socket PATH`), in the
 *   form glibc's syslog(3) and so qpsmtpd's Sys::Syslog write, which is what rsyslog's imuxsock
 *   and systemd-journald parse on that socket (RFC 5424 there would be taken as free text);
 * - `logsock udp` / `logsock tcp`: to `server HOST[:PORT]` (default 127.0.0.1:514) in RFC 5424,
 *   or `rfc 3164` for receivers that want the BSD form; TCP frames by octet counting (RFC 6587).
 * The message is qpsmtpd's line after the pid: `<session> (<hook>) <plugin>: <text>`.
 * Security: the local socket is written by util-linux logger, started with an argument vector.
 */
import { accessSync, constants, statSync } from 'node:fs'
import { definePlugin } from '../../host/define-plugin.ts'
import type { LogEntry, LogLevel } from '../../host/logger.ts'
import { opt } from '../../host/options.ts'
import { logLevelOption, qpsmtpdPrefix } from './format.ts'
import {
  type Framing,
  frame,
  parseFacility,
  parseSeverity,
  rfc3164,
  rfc5424,
  type SyslogHeader,
  syslogHostname,
  truncateUtf8,
} from './syslog-format.ts'
import { localTransport, type SyslogTransport, tcpTransport, udpTransport } from './syslog-transports.ts'

const loggerPaths = ['/usr/bin/logger', '/bin/logger']

type Sock = 'unix' | 'udp' | 'tcp'

/** qpsmtpd's `logsock` list: the first usable one (a Unix socket that is not there is not). */
function chooseSocket(list: string, socketPath: string): Sock {
  const unusable: string[] = []
  for (const raw of list.split(',').map((s) => s.trim().toLowerCase())) {
    if (raw === 'udp' || raw === 'tcp') return raw
    if (raw === 'unix' || raw === 'native' || raw === 'stream') {
      if (isSocket(socketPath)) return 'unix'
      unusable.push(`${socketPath} is not a socket (is a syslog daemon running?)`)
    } else if (raw === 'console' || raw === 'pipe' || raw === 'eventlog')
      unusable.push(`logsock ${raw} is not supported (use unix, udp or tcp)`)
    else throw new Error(`logsock: expected unix, udp or tcp (comma-separated), got "${raw}"`)
  }
  throw new Error(unusable.join('; '))
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket()
  } catch {
    return false
  }
}

function findLogger(): string {
  for (const p of loggerPaths) {
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {}
  }
  throw new Error(`the local syslog socket is written by util-linux logger, not found at ${loggerPaths.join(' or ')}`)
}

export function parseServer(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]\s]+))(?::(\d{1,5}))?$/i.exec(text.trim())
  const port = Number(m?.[3] ?? 514)
  if (!m || port < 1 || port > 65535) throw new Error(`server: expected HOST, HOST:PORT or [IPv6]:PORT, got "${text}"`)
  return { host: (m[1] ?? m[2]) as string, port }
}

export default definePlugin({
  name: 'logging/syslog',
  description: 'log entries to the local syslog socket or a remote syslog (RFC 5424)',
  options: {
    loglevel: opt.string({ default: '4', description: 'highest level written (0-7 or LOGxxx)' }),
    priority: opt.optionalString({ description: 'one syslog severity for every entry (LOG_NOTICE, ...)' }),
    ident: opt.string({ default: 'qtsmtpd', pattern: /^[\w.-]{1,48}$/, description: 'APP-NAME / tag' }),
    facility: opt.string({ default: 'LOG_MAIL', description: 'syslog facility (LOG_MAIL, LOG_LOCAL0, ...)' }),
    logsock: opt.string({ default: 'unix', description: 'unix, udp or tcp; a comma list takes the first usable' }),
    socket: opt.string({ default: '/dev/log', description: 'the local syslog socket' }),
    server: opt.string({ default: '127.0.0.1:514', description: 'HOST[:PORT] for udp and tcp' }),
    rfc: opt.enum(['5424', '3164'], { default: '5424', description: 'message format for udp and tcp' }),
    framing: opt.enum(['octet-counting', 'newline'], { default: 'octet-counting', description: 'TCP framing' }),
    queue: opt.number({
      default: 1_048_576,
      min: 0,
      integer: true,
      description: 'bytes kept while the receiver is down',
    }),
    max_message: opt.number({ default: 8192, min: 480, max: 65_000, integer: true, description: 'bytes per message' }),
  },
  setup({ name, options, paths, server }) {
    const level = logLevelOption(options.loglevel)
    const fixed = options.priority === undefined ? undefined : parseSeverity(options.priority)
    const facility = parseFacility(options.facility)
    const socketPath = paths.resolve(options.socket)
    const sock = chooseSocket(options.logsock, socketPath)
    const header: SyslogHeader = {
      facility,
      hostname: syslogHostname(server.me),
      appName: options.ident,
      pid: process.pid,
    }
    const text = (e: LogEntry): Buffer =>
      truncateUtf8(`${qpsmtpdPrefix(e).trimStart()} ${e.message}`.trimStart(), options.max_message)

    let record: (severity: LogLevel, time: Date, message: Buffer) => Buffer
    let transport: SyslogTransport
    const droppedNotice = (count: number) =>
      record(4, new Date(), Buffer.from(`${name}: ${count} log entries dropped (syslog receiver unreachable or slow)`))
    const transportOptions = { name, maxQueue: options.queue, droppedNotice }
    if (sock === 'unix') {
      const logger = findLogger()
      record = (severity, _time, message) =>
        Buffer.concat([Buffer.from(`<${facility * 8 + severity}>`), message, Buffer.from('\n')])
      transport = localTransport(logger, socketPath, options.ident, options.max_message, transportOptions)
    } else {
      const { host, port } = parseServer(options.server)
      const format = options.rfc === '3164' ? rfc3164 : rfc5424
      const framing: Framing = options.framing
      record =
        sock === 'tcp' ? (s, t, m) => frame(format(header, s, t, m), framing) : (s, t, m) => format(header, s, t, m)
      transport = (sock === 'tcp' ? tcpTransport : udpTransport)(host, port, transportOptions)
    }

    return {
      hooks: {
        logging: (e) => {
          if (e.level > level || e.plugin === name) return
          transport.send(record(fixed ?? e.level, e.time, text(e)))
        },
      },
      close: () => transport.close(),
    }
  },
})
