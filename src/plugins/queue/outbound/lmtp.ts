/**
 * queue/lmtp: delivers each accepted message over LMTP (RFC 2033) to a TCP or Unix socket,
 * e.g. Dovecot's lmtp service, and answers 250 only when every recipient got a 250.
 *
 * `check_rcpt` (on by default) opens the LMTP session at the first RCPT, asks the server
 * about each recipient, answers the client with the server's per-recipient reply and keeps
 * the session for the queue step. When the replies after DATA still differ, the message gets
 * one reply: 451 if any recipient failed temporarily (the client retries, so recipients that
 * already got it may get it twice: at-least-once), else the 5xx (docs/queues.md).
 */

import { describeTarget } from '../../../clients/smtp/wire.ts'
import { definePlugin } from '../../../host/define-plugin.ts'
import { opt } from '../../../host/options.ts'
import { buildRelay, hopsFrom, outboundOptions } from './options.ts'
import { outboundHooks } from './queue.ts'
import { translateXclientArg } from './smtp-forward.ts'

export default definePlugin({
  name: 'queue/lmtp',
  aliases: ['lmtp'],
  description: 'delivers accepted messages over LMTP (Dovecot, Cyrus, ...)',
  timeoutMs: 1_800_000,
  translateArgs: translateXclientArg,
  options: {
    host: opt.optionalString({ positional: 0, description: 'LMTP server host, or a socket path' }),
    port: opt.number({ positional: 1, default: 24, min: 1, max: 65535, integer: true, description: 'port' }),
    socket: opt.optionalString({ description: 'LMTP Unix socket path' }),
    xclient: opt.boolean({ default: false, description: 'send XCLIENT when offered' }),
    check_rcpt: opt.boolean({ default: true, description: 'ask the LMTP server about each recipient at RCPT time' }),
    ...outboundOptions,
    // LMTP runs on the local host or a trusted network: no STARTTLS unless asked for.
    tls: opt.enum(['none', 'opportunistic', 'required'], { default: 'none', description: 'STARTTLS policy' }),
  },
  setup({ name, options, server, log, paths }) {
    const hops = hopsFrom(options.hosts, { host: options.host, port: options.port, socket: options.socket }, paths)
    const relay = buildRelay(options, { protocol: 'lmtp', hops, xclient: options.xclient, me: server.me, paths })
    log.info(`LMTP delivery to ${hops.map(describeTarget).join(', ')}`)
    return { hooks: outboundHooks(name, relay, options.check_rcpt), close: () => relay.close() }
  },
})
