/**
 * How the next hop's answers become our replies (docs/queues.md "Reply mapping").
 *
 * Faithful: a remote 5xx to MAIL, RCPT or the content becomes our 5xx with the remote's code,
 * enhanced code and text (qpsmtpd makes it a 451; we do not, or the sender would retry a
 * message that can never be delivered). Everything temporary or unknown is a 451: remote
 * 4xx, timeouts, refused or dropped connections, TLS and AUTH problems with the hop, and a
 * 5xx the hop gives to our *session* (greeting, EHLO, XCLIENT), which says nothing about
 * the message. Internal hop names and addresses go to the log, not to the client.
 */

import { OutboundError } from '../../../clients/smtp/errors.ts'
import { type RemoteReply, replyText } from '../../../clients/smtp/wire.ts'
import { defer, reject, type Verdict } from '../../../host/verdict.ts'
import type { EnhancedCode } from '../../../protocol/reply.ts'

const MESSAGE_STEPS = new Set(['MAIL', 'RCPT', 'DATA', 'BDAT', 'end of data'])
const MAX_LINES = 10

/** The remote reply as ours, in the same class. */
export function fromRemote(r: RemoteReply, lines: readonly string[] = r.lines): Verdict {
  const text = lines.slice(0, MAX_LINES)
  if (r.code >= 500) return reject({ code: r.code, enhanced: r.enhanced ?? '5.0.0', text })
  // 421 means "closing the channel" at the hop; to our client it is an ordinary deferral.
  const code = r.code === 421 || r.code < 400 ? 451 : r.code
  return defer({ code, enhanced: r.enhanced?.startsWith('4.') ? r.enhanced : '4.0.0', text })
}

const temp = (enhanced: EnhancedCode, text: string): Verdict => defer({ code: 451, enhanced, text })

/**
 * The hop's refusal of MAIL. A 530 there ("must issue STARTTLS / authenticate first") is
 * about our session with the hop (a configuration matter), not the message: 451.
 */
export function mailRefusal(r: RemoteReply): Verdict {
  if (r.code === 530) return temp('4.7.0', 'Next hop refuses our session, try again later')
  return fromRemote(r)
}

/** Any failure of a delivery attempt as a verdict; never a 250, never throws. */
export function failureVerdict(e: unknown): Verdict {
  if (!(e instanceof OutboundError)) return temp('4.3.0', 'Temporary failure forwarding the message, try again later')
  if (e.kind === 'reply' && e.reply !== undefined) {
    if (MESSAGE_STEPS.has(e.step)) return fromRemote(e.reply)
    return temp('4.4.0', 'Next hop unavailable, try again later')
  }
  switch (e.kind) {
    case 'refused':
      return temp('4.4.1', 'Next hop not reachable, try again later')
    case 'timeout':
      return temp('4.4.2', 'Next hop timed out, try again later')
    case 'tls':
      return temp('4.7.5', 'Secure connection to the next hop failed, try again later')
    case 'auth':
      return temp('4.7.0', 'Authentication at the next hop failed, try again later')
    case 'incompatible':
      return temp('4.3.3', 'Next hop cannot take this message (missing extension), try again later')
    default:
      return temp('4.4.2', 'Connection to the next hop failed, try again later')
  }
}

/** A one-line description of a failure for the log. */
export const describeFailure = (e: unknown): string =>
  e instanceof OutboundError
    ? `${e.kind} at ${e.step}: ${e.message}${e.reply ? ` (${replyText(e.reply)})` : ''}`
    : String((e as Error)?.stack ?? e)

export interface RecipientReply {
  readonly address: string
  readonly reply: RemoteReply
}

const line = (x: RecipientReply) => `<${x.address}>: ${x.reply.code} ${x.reply.lines.join(' ')}`

/**
 * Per-recipient answers that differ. `delivered` says whether the content already went to
 * the accepted ones (LMTP after DATA) or nothing was sent (RCPT time, all-or-nothing).
 *  - any 4xx: 451 for the whole message (the client retries every recipient; after DATA the
 *    ones already delivered get a second copy: at-least-once);
 *  - otherwise some 5xx: the first 5xx for the whole message, naming each recipient, so the
 *    sender's bounce says what happened to whom; nothing is silently dropped.
 */
export function mixedVerdict(results: readonly RecipientReply[], delivered: boolean): Verdict {
  const failed = results.filter((x) => x.reply.code >= 300)
  const ok = results.filter((x) => x.reply.code < 300)
  const tempFail = failed.find((x) => x.reply.code < 500)
  const lines = failed.map(line)
  if (tempFail !== undefined) {
    const note = delivered
      ? `Delivered to ${ok.length} of ${results.length} recipients; retry the whole message`
      : 'Not forwarded to any recipient; try again later'
    return fromRemote(tempFail.reply, [...lines.slice(0, MAX_LINES - 1), note])
  }
  const first = failed[0]?.reply
  if (first === undefined) throw new Error('mixedVerdict without a failure')
  const note =
    ok.length === 0
      ? 'Refused by the next hop'
      : delivered
        ? `Delivered only to ${ok.map((x) => `<${x.address}>`).join(', ')}`.slice(0, 400)
        : 'Not forwarded to any recipient'
  return fromRemote(first, [...lines.slice(0, MAX_LINES - 1), note])
}
