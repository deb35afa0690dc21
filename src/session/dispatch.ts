/**
 * One command line: decoded (UTF-8, RFC 6531), checked against the session-wide limits and
 * the pipelining rules (RFC 2920 §3.1, Postfix smtpd_forbid_unauth_pipelining), and handed to
 * its verb from the command table.
 */
import { isHttpLike, splitCommand } from '../protocol/command-line.ts'
import { commandTable } from './command-table.ts'
import { unknownCommand } from './commands/unknown.ts'
import { Replies } from './replies.ts'
import type { SessionCore } from './session-core.ts'

const decoder = new TextDecoder('utf-8', { fatal: true })

export async function dispatchCommand(s: SessionCore, raw: Buffer): Promise<void> {
  let line: string
  try {
    line = decoder.decode(raw)
  } catch {
    return s.error(Replies.badUtf8)
  }
  if (++s.counters.commands > s.settings.limits.commandsPerSession) return s.close(Replies.tooManyCommands)
  if (s.counters.commands === 1 && isHttpLike(line)) {
    s.log.notice(`cross-protocol request refused: ${line.slice(0, 60)}`)
    return s.close(Replies.httpRefused)
  }
  const { verb, args } = splitCommand(line)
  s.command = { verb, args }
  const spec = commandTable.get(verb)
  // Bytes already waiting behind a command that must end its group, or from a client never
  // offered PIPELINING, were sent without waiting for our reply.
  if (s.settings.policies.enforceSync && s.codec.buffered() > 0 && (!s.offeredPipelining || spec?.lastInGroup)) {
    s.log.notice(`pipelining violation after ${verb}`)
    return s.close(Replies.syncError)
  }
  if (spec === undefined) return unknownCommand(s, verb, args)
  if (spec.junk && ++s.counters.junk > s.settings.limits.junkCommands) return s.close(Replies.tooManyJunk)
  if (s.settings.policies.tlsRequired && s.connection.tls === undefined && !spec.preTls)
    return s.error(Replies.tlsFirst)
  await spec.run(s, args)
}

/** Decodes a SASL response line; null when it is not UTF-8. */
export function decodeLine(raw: Buffer): string | null {
  try {
    return decoder.decode(raw)
  } catch {
    return null
  }
}
