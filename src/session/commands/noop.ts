/** NOOP (RFC 5321 §4.1.1.9); the noop hook may refuse it (noop_counter). */
import { reply } from '../../protocol/reply.ts'
import { Replies, verdictReply } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'

const noopDefaults = { reject: reply(500, '5.7.0', 'Stop wasting my time.'), defer: Replies.internalError }

export async function noop(s: SessionCore): Promise<void> {
  const { verdict } = await s.runner.chain('noop', s)
  if (verdict.kind === 'done') return
  const r = verdictReply(verdict, noopDefaults)
  if (r === undefined) return s.send(Replies.ok)
  if (verdict.kind !== 'accept' && verdict.kind !== 'pass' && verdict.disconnect) return s.close(r)
  s.send(r)
}
