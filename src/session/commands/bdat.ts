/**
 * BDAT (RFC 3030 CHUNKING): exactly `size` octets follow the command line. The chunk is
 * always consumed, even when refused, so that its bytes can never be read as commands.
 * An unreadable size leaves no safe way to find the next command: 501 and close.
 */
import { reply } from '../../protocol/reply.ts'
import { Replies } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'
import { beginContent, contentRefusal } from './content.ts'

const syntax = /^(\d{1,15})(?: +(LAST))? *$/i

export async function bdat(s: SessionCore, args: string): Promise<void> {
  const m = syntax.exec(args)
  if (!m) return s.close(reply(501, '5.5.4', 'Syntax: BDAT size [LAST]'))
  const size = Number(m[1])
  const last = m[2] !== undefined
  if (!s.settings.policies.chunking) return discard(s, size, reply(502, '5.5.1', 'Error: CHUNKING not enabled'))
  // CHUNKING is an ESMTP extension: a client that said HELO was never offered it (RFC 3030 §2).
  if (s.connection.helo?.verb === 'HELO') return discard(s, size, reply(503, '5.5.1', 'Error: CHUNKING needs EHLO'))
  const refusal = contentRefusal(s, 'bdat')
  const phase = s.phase
  if (refusal !== undefined || !('txn' in phase)) return discard(s, size, refusal ?? Replies.needMail)
  const txn = phase.txn
  if (txn.contentMode === undefined) {
    const refused = await beginContent(s, txn, 'bdat')
    if (refused !== undefined) {
      if (refused.disconnect) return s.close(refused.reply)
      txn.contentMode = 'bdat'
      txn.pendingRefusal = refused.reply
      s.codec.beginMessage({ maxMessageSize: 0, maxLineLength: 0, bareLineEndings: 'reject', binary: true })
    }
  }
  txn.bdatChunk = { size, last }
  s.codec.startBdat(size, last)
}

/** Consumes a chunk that cannot belong to a transaction, then answers with `r`. */
function discard(s: SessionCore, size: number, r: import('../../protocol/reply.ts').Reply): Promise<void> {
  s.discardChunk(size, r)
  return Promise.resolve()
}
