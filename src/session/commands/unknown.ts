/**
 * Verbs the core does not implement: the unrecognized_command hook may take them (that is
 * how plugins add commands); otherwise 502 for known SMTP verbs we refuse (EXPN, TURN, ETRN,
 * ...) and 500 for the rest, counted against the unknown-command limit.
 */
import { Replies, verdictReply } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'

const refused = { reject: Replies.unrecognized, defer: Replies.internalError }
const notImplemented = new Set(['EXPN', 'TURN', 'ETRN', 'ATRN', 'SEND', 'SOML', 'SAML', 'VERB'])

export async function unknownCommand(s: SessionCore, verb: string, args: string): Promise<void> {
  const { verdict } = await s.runner.chain('unrecognizedCommand', s, verb, args)
  if (verdict.kind === 'done') return
  // The plugin took the command; a 250 unless its verdict says more.
  if (verdict.kind === 'accept') return s.send(verdictReply(verdict, { accept: Replies.ok, ...refused }) ?? Replies.ok)
  if (++s.counters.unknown > s.settings.limits.unknownCommands) return s.close(Replies.tooManyUnknown)
  if (verdict.kind === 'reject' && verdict.disconnect) {
    return s.close(
      verdictReply(verdict, { reject: { ...Replies.unrecognized, code: 521 }, defer: Replies.unrecognized }),
    )
  }
  const fallback = notImplemented.has(verb) ? Replies.notImplemented : Replies.unrecognized
  return s.error(verdictReply(verdict, refused) ?? fallback)
}
