/**
 * VRFY (RFC 5321 §3.5.3): 252 unless a plugin answers. Unlike qpsmtpd, the hook gets the
 * argument.
 */
import { reply } from '../../protocol/reply.ts'
import { Replies, verdictReply } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'

const vrfyDefaults = {
  accept: reply(250, '2.1.5', 'User OK'),
  reject: reply(554, '5.7.1', 'Access denied'),
  defer: reply(450, '4.7.0', 'Try again later'),
}

export async function vrfy(s: SessionCore, args: string): Promise<void> {
  if (args.trim() === '') return s.error(reply(501, '5.5.4', 'Syntax: VRFY address'))
  const { verdict } = await s.runner.chain('vrfy', s, args.trim())
  if (verdict.kind === 'done') return
  const r = verdictReply(verdict, vrfyDefaults) ?? Replies.vrfyCannot
  if ((verdict.kind === 'reject' || verdict.kind === 'defer') && verdict.disconnect) return s.close(r)
  s.send(r)
}
