/**
 * DATA (RFC 5321 §4.1.1.4): 354, then content until CRLF.CRLF, which the codec finds.
 */
import { Replies } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'
import { beginContent, contentRefusal } from './content.ts'

export async function data(s: SessionCore, args: string): Promise<void> {
  if (args.trim() !== '') return s.error(Replies.noParams)
  const refusal = contentRefusal(s, 'data')
  if (refusal !== undefined) return s.error(refusal)
  const phase = s.phase
  if (!('txn' in phase)) return s.error(Replies.needMail)
  const refused = await beginContent(s, phase.txn, 'data')
  if (refused !== undefined) {
    if (refused.disconnect) return s.close(refused.reply)
    await s.resetTransaction()
    return s.error(refused.reply)
  }
  s.codec.startData()
  await s.sendNow(Replies.startData)
}
