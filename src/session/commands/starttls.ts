/**
 * STARTTLS (RFC 3207). Buffered plaintext is discarded by the session before the
 * handshake; afterwards everything learnt from the client (HELO, AUTH) is forgotten.
 */
import { Replies } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'

export async function starttls(s: SessionCore, args: string): Promise<void> {
  if (args.trim() !== '') return s.error(Replies.noParams)
  if (s.connection.tls !== undefined) return s.error(Replies.tlsAlready)
  if (s.tls === undefined) return s.error(Replies.tlsNotAvailable)
  // Inside a transaction (even between BDAT chunks) STARTTLS is refused and the transaction
  // dropped: nothing of it may carry over into an encrypted session (security.md §1.16).
  if (s.transaction !== undefined) {
    await s.resetTransaction()
    return s.error(Replies.badSequence)
  }
  await s.sendNow(Replies.startTls)
  if (!(await s.startTls())) return
  await s.resetTransaction()
  s.connection.helo = undefined
  s.connection.auth = undefined
  s.phase = { name: 'greeted' }
}
