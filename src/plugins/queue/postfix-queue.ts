/**
 * queue/postfix-queue: hands the message to Postfix's cleanup service, as Postfix's own smtpd
 * does, so qtsmtpd can run as Postfix's front end and the 250 carries Postfix's queue id.
 * qpsmtpd arguments: `queue/postfix-queue [socket] [FLAG_...]...`: a socket path (or `host:port`;
 * several, comma-separated, are tried in order), then cleanup flags such as FLAG_MASK_EXTERNAL.
 * Env POSTFIXQUEUE overrides the sockets, then config file `cleanup_sockets`; the default is
 * /var/spool/postfix/public/cleanup. Extra option: `timeout` (seconds).
 * The qtsmtpd user must reach the socket (group postdrop for the public/ directory).
 */

import { mtaEnvelope } from '../../clients/mta-input/mta-input.ts'
import {
  type CleanupFlagName,
  cleanupFlags,
  cleanupStatusReply,
  dsnMailAttributes,
  dsnRcptAttributes,
  injectMessage,
} from '../../clients/postfix-cleanup/postfix-cleanup.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { opt } from '../../host/options.ts'
import { accept, defer, reject } from '../../host/verdict.ts'

const isFlag = (s: string): s is CleanupFlagName => Object.hasOwn(cleanupFlags, s)

/** qpsmtpd's syntax: a leading path (or host:port) and bare FLAG_ names. */
function translateArgs(args: readonly string[]): readonly string[] {
  const out: string[] = []
  const flags: string[] = []
  let i = 0
  if (args[0] !== undefined && (args[0].includes('/') || /^[^=\s]+:\d+$/.test(args[0])))
    out.push('socket', args[i++] as string)
  for (; i < args.length; i++) {
    const a = args[i] as string
    if (/^FLAG_[A-Z0-9_]+$/.test(a)) flags.push(a)
    else out.push(a)
  }
  if (flags.length > 0) out.push('flags', flags.join(','))
  return out
}

export default definePlugin({
  name: 'queue/postfix-queue',
  description: "hands the message to Postfix's cleanup service and reports Postfix's queue id",
  translateArgs,
  options: {
    socket: opt.list({
      default: ['/var/spool/postfix/public/cleanup'],
      description: 'cleanup socket path(s) or host:port, tried in order',
    }),
    flags: opt.list({ default: [], description: 'cleanup flags, e.g. FLAG_MASK_EXTERNAL' }),
    timeout: opt.number({ default: 120, min: 1, max: 3000, description: 'seconds for the whole hand-off (451)' }),
  },
  timeoutMs: 3_100_000,
  setup({ options, config, log, paths }) {
    let flags = 0
    for (const f of options.flags) {
      if (!isFlag(f)) throw new Error(`unknown cleanup flag ${f} (known: ${Object.keys(cleanupFlags).join(', ')})`)
      if (f === 'FLAG_DISCARD') throw new Error('FLAG_DISCARD would silently drop every message; use a discard plugin')
      flags |= cleanupFlags[f]
    }
    const fromEnv = process.env.POSTFIXQUEUE
    const fromConfig = config
      .lines('cleanup_sockets')
      .flatMap((l) => l.split(/[,\s]+/))
      .filter((s) => s !== '')
    const named = fromEnv
      ? fromEnv.split(/[,\s]+/).filter((s) => s !== '')
      : fromConfig.length > 0
        ? fromConfig
        : options.socket
    for (const s of named)
      if (!s.includes('/') && !/^(\[[^\]]+\]|[^:\s]+):\d+$/.test(s))
        throw new Error(`cleanup socket must be a path or host:port: ${s}`)
    // A path has a slash (host:port never does); a relative one is taken from the install directory.
    const sockets = named.map((s) => (s.includes('/') ? paths.resolve(s) : s))
    log.info(`queueing to Postfix cleanup at ${sockets.join(', ')} (flags ${flags})`)

    return {
      hooks: {
        queue: async (ctx, msg) => {
          const txn = ctx.transaction
          const envelope = mtaEnvelope(txn)
          if (envelope === undefined) return reject('Address not acceptable to Postfix')
          const { from, to } = envelope
          const c = ctx.connection
          const result = await injectMessage({
            sockets,
            flags: flags | (txn.mailFrom.params.smtputf8 ? cleanupFlags.FLAG_SMTPUTF8 : 0),
            sender: from,
            // DSN parameters travel as smtpd(8) sends them, so Postfix's DSNs honour NOTIFY, RET, ENVID, ORCPT.
            recipients: txn.recipients.map((r, i) => ({
              address: to[i] as string,
              attributes: dsnRcptAttributes(r.params),
            })),
            // What smtpd(8) tells cleanup about the client, for its logging and address rewriting.
            attributes: {
              rewrite_context: 'remote',
              log_client_name: c.remoteHost ?? 'unknown',
              log_client_address: c.remote.ip,
              log_client_port: String(c.remote.port),
              ...(c.helo === undefined ? {} : { log_helo_name: c.helo.host }),
              log_protocol_name: c.helo?.verb === 'HELO' ? 'SMTP' : 'ESMTP',
              ...dsnMailAttributes(txn.mailFrom.params),
            },
            message: () => msg.stream(),
            timeoutMs: options.timeout * 1000,
            signal: ctx.signal,
          })
          if (result.ok) {
            const id = (msg.headers.first('Message-ID') ?? '')
              .trim()
              .replace(/[^\x21-\x7e]/g, '')
              .slice(0, 200)
            ctx.result('pass', `queued by Postfix as ${result.queueId} via ${result.socket}`)
            return accept({ code: 250, text: `Queued! ${id === '' ? '' : `${id} `}(Queue-Id: ${result.queueId})` })
          }
          if (result.status === -1) {
            ctx.log.error(
              `Postfix hand-off failed${result.queueId ? ` (queue id ${result.queueId})` : ''}: ${result.reason}`,
            )
            return defer({ code: 451, enhanced: '4.3.0', text: 'Unable to queue message; try again later' })
          }
          const r = cleanupStatusReply(result.status, result.reason)
          ctx.log.warn(`Postfix cleanup refused ${result.queueId}: status ${result.status} ${result.reason}`)
          return r.code >= 500 ? reject(r) : defer(r)
        },
      },
    }
  },
})
