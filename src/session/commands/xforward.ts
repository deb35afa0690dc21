/**
 * XFORWARD (Postfix XFORWARD_README): a trusted content filter or proxy (Postfix's
 * smtpd_proxy_filter, an smtp client with smtp_send_xforward_command) passes the original
 * client's NAME ADDR PORT PROTO HELO IDENT SOURCE before MAIL; they reach plugins and the
 * Received header. Unlike Postfix, they are not reset after each transaction (Postfix's
 * clients send them before every MAIL anyway). Only for `xclient_trusted` addresses.
 */
import { Replies } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'
import { applyClient, forwardPreamble } from './forward-attributes.ts'

const names = ['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO', 'IDENT', 'SOURCE']

export async function xforward(s: SessionCore, args: string): Promise<void> {
  const a = await forwardPreamble(s, 'XFORWARD', args, names)
  if (a === undefined) return
  applyClient(s, 'XFORWARD', a)
  s.send(Replies.ok)
}
