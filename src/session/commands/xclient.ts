/**
 * XCLIENT (Postfix XCLIENT_README): a trusted forwarder (a proxy, qpsmtpd's smtp-forward)
 * states the real client: NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT. The session
 * starts over as if that client had connected: connect hooks run again (relay, dnsbl, ...)
 * and the reply is the 220 greeting, as Postfix does; the client then sends EHLO again.
 * LOGIN marks the client authenticated (a relay client), as a SASL login would.
 * Security: only for addresses in `xclient_trusted`; 550 5.7.0 for everyone else.
 */
import { reply } from '../../protocol/reply.ts'
import { verdictReply } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'
import { applyClient, forwardPreamble } from './forward-attributes.ts'

const names = ['NAME', 'REVERSE_NAME', 'ADDR', 'PORT', 'PROTO', 'HELO', 'LOGIN', 'DESTADDR', 'DESTPORT']

const connectDefaults = {
  reject: reply(554, '5.7.1', 'Connection from you denied, bye bye.'),
  defer: reply(421, '4.7.0', 'Connection refused, try again later'),
}

export async function xclient(s: SessionCore, args: string): Promise<void> {
  const a = await forwardPreamble(s, 'XCLIENT', args, names)
  if (a === undefined) return
  await s.resetTransaction()
  // A new client: what the old one was allowed does not carry over.
  s.connection.relayClient = false
  s.connection.auth = undefined
  s.connection.helo = undefined
  s.phase = { name: 'greeted' }
  applyClient(s, 'XCLIENT', a)
  if (a.LOGIN !== undefined) {
    s.connection.auth = { user: a.LOGIN, mechanism: 'XCLIENT' }
    s.connection.relayClient = true
  }
  const { verdict } = await s.runner.chain('connect', s)
  // A connect hook that answered itself (done) gave the greeting.
  if (verdict.kind === 'done') return
  if (verdict.kind === 'reject' || verdict.kind === 'defer') {
    const r = verdictReply(verdict, connectDefaults)
    return s.close(r)
  }
  const g = s.settings.greeting
  s.send(reply(220, undefined, g.includes('ESMTP') ? g : `${g} ESMTP`))
}
