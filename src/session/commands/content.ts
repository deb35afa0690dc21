/**
 * What DATA and the first BDAT share: the data hook, then a spool for the message and the
 * codec switched to content with this transaction's limits.
 */
import { MessageSpool } from '../../message/spool.ts'
import { reply } from '../../protocol/reply.ts'
import { Replies, verdictReply } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'
import type { TxnState } from '../transaction.ts'

const dataDefaults = {
  reject: reply(554, '5.7.1', 'Message denied'),
  defer: reply(451, '4.3.0', 'Message temporarily denied, try again later'),
}

/** Checks that content may start; returns the refusal to send, or undefined. */
export function contentRefusal(s: SessionCore, mode: 'data' | 'bdat') {
  const phase = s.phase
  if (phase.name === 'greeted' || phase.name === 'connected') return Replies.needHelo
  if (phase.name === 'ready') return Replies.needMail
  if (phase.name === 'mail') return Replies.noValidRecipients
  if (phase.name === 'rcpt' || phase.name === 'content') {
    const used = phase.txn.contentMode
    if (used !== undefined && used !== mode) return Replies.mixedDataBdat
    if (mode === 'data' && phase.txn.body === 'BINARYMIME')
      return reply(503, '5.5.1', 'Error: BINARYMIME requires BDAT')
  }
  return undefined
}

/**
 * Runs the data hook and prepares the spool. Returns undefined when content may flow,
 * or the refusal reply (and whether to disconnect).
 */
export async function beginContent(
  s: SessionCore,
  txn: TxnState,
  mode: 'data' | 'bdat',
): Promise<{ reply: import('../../protocol/reply.ts').Reply; disconnect: boolean } | undefined> {
  const { verdict } = await s.runner.chain('data', s)
  if (verdict.kind === 'reject' || verdict.kind === 'defer') {
    return { reply: verdictReply(verdict, dataDefaults) ?? dataDefaults.reject, disconnect: verdict.disconnect }
  }
  const limits = s.settings.limits
  txn.contentMode = mode
  const spool = new MessageSpool({
    spoolDir: s.settings.spoolDir,
    memoryThreshold: s.settings.spoolMemoryThreshold,
    maxHeaderBytes: limits.headerSize,
  })
  txn.spool = spool
  s.codec.beginMessage({
    maxMessageSize: limits.messageSize > 0 ? limits.messageSize : Number.MAX_SAFE_INTEGER,
    maxLineLength: limits.dataLine,
    bareLineEndings: s.settings.policies.bareLineEndings,
    binary: txn.body === 'BINARYMIME',
  })
  if (s.phase.name === 'rcpt') s.phase = { name: 'content', helo: s.phase.helo, txn }
  return undefined
}
