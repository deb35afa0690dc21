/** RSET (RFC 5321 §4.1.1.5): ends the transaction, keeps HELO. */
import { Replies } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'

export async function rset(s: SessionCore, args: string): Promise<void> {
  if (args.trim() !== '') return s.error(Replies.noParams)
  await s.resetTransaction()
  s.send(Replies.ok)
}
