/**
 * RSET (RFC 5321 §4.1.1.5): ends the transaction, keeps HELO. The reset_transaction hook runs
 * on every RSET, with or without a transaction, as in qpsmtpd (noop_counter relies on it).
 */
import { Replies } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'

export async function rset(s: SessionCore, args: string): Promise<void> {
  if (args.trim() !== '') return s.error(Replies.noParams)
  if (s.transaction === undefined) await s.runner.all('resetTransaction', s)
  else await s.resetTransaction()
  s.send(Replies.ok)
}
