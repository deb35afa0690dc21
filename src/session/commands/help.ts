/** HELP (RFC 5321 §4.1.1.8); the help plugin can answer from files. */
import { reply } from '../../protocol/reply.ts'
import { Replies, verdictReply } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'

const helpText = [
  'qtsmtpd, an SMTP server. Commands:',
  'HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH',
  'See RFC 5321 and https://www.rfc-editor.org/rfc/rfc5321',
]

export async function help(s: SessionCore, args: string): Promise<void> {
  const { verdict } = await s.runner.chain('help', s, args.trim())
  if (verdict.kind === 'done') return
  const fallback = reply(214, '2.0.0', helpText)
  const r = verdictReply(verdict, {
    accept: fallback,
    reject: reply(502, '5.5.1', 'HELP not implemented'),
    defer: Replies.internalError,
  })
  s.send(r ?? fallback)
}
