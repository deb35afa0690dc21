/**
 * RCPT TO (RFC 5321 §4.1.1.3) with DSN NOTIFY/ORCPT (RFC 3461). A recipient is accepted
 * only when a plugin says so: nobody deciding means "Relaying denied", so a configuration
 * without a recipient policy is never an open relay.
 */
import { parseForwardPath, splitPathAndParams } from '../../protocol/address.ts'
import type { RcptTo } from '../../protocol/envelope.ts'
import { parseRcptParams } from '../../protocol/mail-params.ts'
import { reply } from '../../protocol/reply.ts'
import { Replies, verdictReply } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'
import { offeredExtensions } from './extensions.ts'
import { runPathHooks } from './path-hooks.ts'

export const relayingDenied = reply(550, '5.7.1', 'Relaying denied')

const rcptDefaults = {
  accept: Replies.recipientOk,
  reject: relayingDenied,
  defer: reply(450, '4.7.1', 'Recipient temporarily rejected, try again later'),
}

export async function rcpt(s: SessionCore, args: string): Promise<void> {
  const phase = s.phase
  if (phase.name !== 'mail' && phase.name !== 'rcpt') {
    return s.error(phase.name === 'greeted' || phase.name === 'connected' ? Replies.needHelo : Replies.needMail)
  }
  const txn = phase.txn
  if (txn.recipients.length >= s.settings.limits.recipients) {
    // RFC 5321 §4.5.3.1.10: a client that pipelined too many RCPTs goes on with DATA to those it
    // got, so the 452s must not reach hard_error_limit; only overshoot past its own limit counts.
    if (++txn.recipientOvershoot <= s.settings.limits.recipientOvershoot) return s.send(Replies.tooManyRecipients)
    return s.error(Replies.tooManyRecipients)
  }
  const strict = s.settings.policies.strictEnvelopes
  const smtputf8 = txn.mailFrom.params.smtputf8
  const split = splitPathAndParams(args, { keyword: 'TO', strict })
  if (!split.ok) return s.error(reply(split.code, split.enhanced, split.message))
  const raw = await runPathHooks(s, 'rcpt', split.value)
  if (raw === undefined) return
  const path = parseForwardPath(raw.path, { smtputf8, strict })
  if (!path.ok) return s.error(reply(path.code, path.enhanced, path.message))
  const params = parseRcptParams(raw.params, offeredExtensions(s), { smtputf8 })
  if (!params.ok) return s.error(reply(params.code, params.enhanced, params.message))
  const to: RcptTo = { address: path.value, params: params.value }
  const { verdict } = await s.runner.chain('rcpt', s, to)
  switch (verdict.kind) {
    case 'accept':
      txn.recordRecipient(to)
      s.phase = { name: 'rcpt', helo: phase.helo, txn }
      s.send(verdictReply(verdict, rcptDefaults) ?? Replies.recipientOk)
      return
    case 'done':
      return
    case 'pass':
      return s.error(relayingDenied)
    case 'reject':
    case 'defer': {
      const r = verdictReply(verdict, rcptDefaults) ?? relayingDenied
      if (verdict.disconnect) return s.close(r)
      return s.error(r)
    }
  }
}
