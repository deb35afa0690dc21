/**
 * milter: Sendmail milters (OpenDKIM, clamav-milter, spamass-milter, rspamd, ...) as a plugin,
 * qpsmtpd's `milter NAME [HOST:]PORT` with Postfix's settings. One line per milter (`milter`,
 * `milter:2`, ... in the order of Postfix's smtpd_milters), each with its own socket, failure
 * policy and timeouts; one milter connection per SMTP session, closed when the session ends.
 * The milter sees each SMTP event as it happens and the message at dataPost; its changes go
 * through the message API, so later plugins and the queue get the edited message.
 * Security: the milter's changes are checked as a plugin's are (no header injection, valid
 * envelope addresses); a recipient it adds passes no rcpt hook, as in Postfix.
 */
import { parseMilterSocket } from '../../clients/milter/index.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { Hooks } from '../../host/hook-map.ts'
import { MilterFilter } from './filter.ts'
import { durationMs, macroDefaults, milterOptions } from './options.ts'

export default definePlugin({
  name: 'milter',
  description: 'a Sendmail milter: every SMTP event, the message, and its changes (protocol version 6)',
  options: milterOptions,
  // A backstop only: the milter's own timeouts (content: 300 s per packet) decide first.
  timeoutMs: 3_600_000,
  setup({ options, paths, server, net, metrics }) {
    const parsed = parseMilterSocket(options.socket)
    const target = 'path' in parsed ? { path: paths.resolve(parsed.path) } : parsed
    const filter = new MilterFilter({
      name: options.name,
      session: {
        target,
        connectTimeoutMs: durationMs(options.connect_timeout),
        commandTimeoutMs: durationMs(options.command_timeout),
        contentTimeoutMs: durationMs(options.content_timeout),
        maxPacket: options.max_packet_size,
        version: Number(options.protocol) as 2 | 3 | 4 | 6,
        macroNames: {
          connect: options.connect_macros,
          helo: options.helo_macros,
          mail: options.mail_macros,
          rcpt: options.rcpt_macros,
          data: options.data_macros,
          endOfHeaders: options.end_of_header_macros,
          endOfMessage: options.end_of_data_macros,
          unknown: options.unknown_command_macros,
        },
        connect: (t, o) => net.connect(t, o),
      },
      defaultAction: options.default_action,
      quarantine: options.quarantine,
      maxEditBytes: options.max_edits_size,
      macros: {
        daemonName: options.daemon_name ?? server.me,
        v: options.macro_v ?? `qtsmtpd ${server.version}`,
        defaults: macroDefaults(options.macro_defaults),
      },
      decisions: metrics.counter({
        name: 'qtsmtpd_milter_decisions_total',
        help: 'Milter decisions by milter, SMTP event and decision',
        labelNames: ['milter', 'event', 'decision'],
      }),
      failures: metrics.counter({
        name: 'qtsmtpd_milter_failures_total',
        help: 'Milter failures (connect, timeout, closed, malformed, oversize, unnegotiated, ...), each ending in the default_action',
        labelNames: ['milter', 'error'],
      }),
    })
    const hooks: Hooks = {
      connect: (ctx) => filter.connect(ctx),
      helo: (ctx, host) => filter.helo(ctx, host),
      ehlo: (ctx, host) => filter.helo(ctx, host),
      mail: (ctx, from) => filter.mail(ctx, from),
      rcpt: (ctx, to) => filter.rcpt(ctx, to),
      data: (ctx) => filter.data(ctx),
      unrecognizedCommand: (ctx, verb, args) => filter.unknown(ctx, verb, args),
      dataPost: (ctx, msg) => filter.content(ctx, msg),
      resetTransaction: (ctx) => filter.reset(ctx),
      disconnect: (ctx) => filter.disconnect(ctx),
      ...(options.quarantine === 'hold' ? { queue: (ctx) => filter.holdGuard(ctx) } : {}),
    }
    return { hooks }
  },
})
