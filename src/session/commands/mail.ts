/**
 * MAIL FROM (RFC 5321 §4.1.1.2) with SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8
 * (RFC 6531), DSN RET/ENVID (RFC 3461), AUTH= (RFC 4954) and REQUIRETLS (RFC 8689).
 */
import { newQueueId } from '../../message/queue-id.ts'
import { parseReversePath, splitPathAndParams } from '../../protocol/address.ts'
import type { MailFrom } from '../../protocol/envelope.ts'
import { parseMailParams } from '../../protocol/mail-params.ts'
import { reply } from '../../protocol/reply.ts'
import { Replies, verdictReply } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'
import { TxnState } from '../transaction.ts'
import { offeredExtensions } from './extensions.ts'
import { runPathHooks } from './path-hooks.ts'

const mailDefaults = {
  accept: Replies.senderOk,
  reject: reply(550, '5.7.1', 'Sender rejected'),
  defer: reply(450, '4.7.1', 'Sender temporarily rejected, try again later'),
}

export async function mail(s: SessionCore, args: string): Promise<void> {
  const phase = s.phase
  if (phase.name === 'greeted' || phase.name === 'connected') return s.error(Replies.needHelo)
  if (phase.name !== 'ready') return s.error(Replies.nestedMail)
  if (s.settings.policies.authRequired && s.connection.auth === undefined) return s.error(Replies.authFirst)
  if (s.connection.messageCount >= s.settings.limits.messagesPerSession) return s.close(Replies.tooManyMessages)
  const policies = s.settings.policies
  const split = splitPathAndParams(args, { keyword: 'FROM', strict: policies.strictEnvelopes })
  if (!split.ok) return s.error(reply(split.code, split.enhanced, split.message))
  const raw = await runPathHooks(s, 'mail', split.value)
  if (raw === undefined) return
  const params = parseMailParams(raw.params, offeredExtensions(s))
  if (!params.ok) return s.error(reply(params.code, params.enhanced, params.message))
  const path = parseReversePath(raw.path, { smtputf8: params.value.smtputf8, strict: policies.strictEnvelopes })
  if (!path.ok) return s.error(reply(path.code, path.enhanced, path.message))
  const limit = s.settings.limits.messageSize
  if (limit > 0 && params.value.size !== undefined && params.value.size > limit)
    return s.error(reply(552, '5.3.4', `Message size exceeds fixed maximum message size (${limit})`))
  if (params.value.requireTls && s.connection.tls === undefined) return s.error(Replies.requireTlsNoTls)
  const from: MailFrom = { address: path.value, params: params.value }
  const txn = new TxnState(newQueueId(), from, s.log)
  s.phase = { name: 'mail', helo: phase.helo, txn }
  const { verdict } = await s.runner.chain('mail', s, from)
  if (verdict.kind === 'accept' || verdict.kind === 'pass') {
    s.send(verdictReply(verdict, mailDefaults) ?? Replies.senderOk)
    return
  }
  s.phase = { name: 'ready', helo: phase.helo }
  if (verdict.kind === 'done') return
  // A refused sender is an error like a refused recipient (Postfix smtpd_hard_error_limit).
  const r = verdictReply(verdict, mailDefaults) ?? mailDefaults.reject
  if (verdict.disconnect) return s.close(r)
  return s.error(r)
}
