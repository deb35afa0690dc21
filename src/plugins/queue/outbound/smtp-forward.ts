/**
 * queue/smtp-forward: hands each accepted message to the next hop over SMTP and answers 250
 * only after the hop's 250 (qpsmtpd `queue/smtp-forward host [port] [xclient]`).
 *
 * Beyond qpsmtpd: failover over `hosts`, STARTTLS (opportunistic or required, certificate
 * checks), AUTH to a smarthost, PIPELINING, SIZE/BODY/SMTPUTF8/DSN passed on, XCLIENT or
 * XFORWARD, a pool of reused sessions, faithful reply mapping (a remote 5xx stays a 5xx) and
 * an all-or-nothing recipient policy; `check_rcpt 1` asks the hop at RCPT time.
 * docs/queues.md has the reply mapping and failure policy. RFC 5321, 3207, 4954, 2920.
 */

import { describeTarget } from '../../../clients/smtp/wire.ts'
import { definePlugin } from '../../../host/define-plugin.ts'
import { opt } from '../../../host/options.ts'
import { buildRelay, hopsFrom, outboundOptions } from './options.ts'
import { outboundHooks } from './queue.ts'

/** qpsmtpd's third argument is the bare word `xclient`. */
export function translateXclientArg(args: readonly string[]): readonly string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    const next = args[i + 1]
    const bare =
      a.toLowerCase() === 'xclient' && (next === undefined || !/^(0|1|yes|no|true|false|on|off)$/i.test(next))
    out.push(...(bare ? ['xclient', '1'] : [a]))
  }
  return out
}

export default definePlugin({
  name: 'queue/smtp-forward',
  aliases: ['queue/smtp_forward', 'smtp-forward', 'async/queue/smtp-forward'],
  description: 'forwards accepted messages to the next hop over SMTP',
  // Our own per-step timeouts bound the hook; this only catches a bug.
  timeoutMs: 1_800_000,
  translateArgs: translateXclientArg,
  options: {
    host: opt.optionalString({ positional: 0, description: 'next hop (host, [v6] or unix:/path)' }),
    port: opt.number({ positional: 1, default: 25, min: 1, max: 65535, integer: true, description: 'port' }),
    xclient: opt.boolean({ positional: 2, default: false, description: 'send Postfix XCLIENT when offered' }),
    check_rcpt: opt.boolean({ default: false, description: 'ask the next hop about each recipient at RCPT time' }),
    ...outboundOptions,
  },
  setup({ name, options, server, log, paths }) {
    if (options.host !== undefined && !/^(\[[0-9A-Fa-f:.]+\]|[\w.-]+|unix:.+|\S*\/\S*)$/.test(options.host))
      throw new Error(`bad next hop "${options.host}"`)
    const hops = hopsFrom(options.hosts, { host: options.host, port: options.port }, paths)
    const relay = buildRelay(options, { protocol: 'smtp', hops, xclient: options.xclient, me: server.me, paths })
    log.info(`forwarding to ${hops.map(describeTarget).join(', ')}`)
    return { hooks: outboundHooks(name, relay, options.check_rcpt), close: () => relay.close() }
  },
})
