/**
 * The end of a message: content checks, data_post_headers, the Authentication-Results and
 * Received headers, data_post, then queue_pre/queue/queue_post. A 250 goes out only when a queue plugin
 * accepted the message (its durable hand-off); anything else, including an exception,
 * is a 4xx or 5xx, never a 250.
 */
import { OwnReceived } from '../host/message.ts'
import { writeAuthResults } from '../mailauth/auth-results-header.ts'
import { buildReceived } from '../message/received.ts'
import type { ContentResult } from '../protocol/codec.ts'
import { formatAddress } from '../protocol/envelope.ts'
import { type Reply, reply } from '../protocol/reply.ts'
import { Replies, verdictReply } from './replies.ts'
import type { SessionCore } from './session-core.ts'
import type { QueueOutcome } from './session-metrics.ts'
import type { TxnState } from './transaction.ts'

const dataPostDefaults = {
  reject: reply(554, '5.7.1', 'Message rejected'),
  defer: reply(451, '4.7.1', 'Message deferred, try again later'),
}
const queueDefaults = {
  reject: reply(554, '5.3.0', 'Message refused by the queue'),
  defer: Replies.queueFailed,
}

/**
 * The end of DATA, or of one BDAT chunk: a chunk that is not the last gets its 250 (or the
 * pending refusal); the last one, or the end of DATA, finishes the message.
 */
export async function contentEnded(s: SessionCore, txn: TxnState, result: ContentResult): Promise<void> {
  const chunk = txn.contentMode === 'bdat' ? txn.bdatChunk : undefined
  if (chunk !== undefined && !chunk.last) {
    txn.bdatChunk = undefined
    s.send(txn.pendingRefusal ?? reply(250, '2.0.0', `${chunk.size} octets received`))
    return
  }
  const dataMode = txn.contentMode === 'data'
  await finishMessage(s, txn, result)
  // RFC 2920 §3.1 lets message content start a pipelined group, so a PIPELINING client may send
  // RSET/MAIL right behind the dot; a client never offered PIPELINING must wait for the reply.
  // (Smuggled commands cannot get here: only CRLF.CRLF ends the content.)
  if (dataMode && s.settings.policies.enforceSync && !s.offeredPipelining && s.codec.buffered() > 0) {
    s.log.notice('commands pipelined after the end of data')
    return s.close(Replies.syncError)
  }
}

export async function finishMessage(s: SessionCore, txn: TxnState, result: ContentResult): Promise<void> {
  let answer: Reply
  let disconnect = false
  let queue: string | undefined
  try {
    const outcome = await judge(s, txn, result)
    answer = outcome.reply
    disconnect = outcome.disconnect
    queue = outcome.queue
  } catch (e) {
    s.log.error(`message ${txn.id} failed: ${(e as Error).stack ?? String(e)}`)
    answer = Replies.internalError
  }
  if (answer.code === 250) {
    s.metrics?.messageAccepted()
    s.connection.messageCount++
    s.counters.junk = 0
    s.counters.errors = 0
  }
  // The reply's log line (log-lines.ts) is the message's: accepted, or refused with its envelope.
  const verb = txn.contentMode === 'bdat' ? 'BDAT' : 'DATA'
  s.command = { ...(s.command ?? { verb, args: '' }), message: { size: result.size, queue } }
  if (disconnect) return s.close(answer)
  s.send(answer)
  await s.resetTransaction()
}

async function judge(
  s: SessionCore,
  txn: TxnState,
  result: ContentResult,
): Promise<{ reply: Reply; disconnect: boolean; queue?: string | undefined }> {
  const refuse = (r: Reply, disconnect = false) => ({ reply: r, disconnect })
  if (txn.pendingRefusal !== undefined) return refuse(txn.pendingRefusal)
  const spool = txn.spool
  if (spool === undefined) return refuse(Replies.internalError)
  await spool.end()
  const limits = s.settings.limits
  if (result.overSize) return refuse(Replies.messageTooBig)
  if (
    s.settings.policies.bareLineEndings === 'reject' &&
    (result.bareLf > 0 || result.bareCr > 0) &&
    txn.body !== 'BINARYMIME'
  )
    return refuse(Replies.bareLineEnding)
  if (result.longLine && txn.body !== 'BINARYMIME') return refuse(Replies.dataLineTooLong)
  if (spool.headerTooBig) return refuse(Replies.headerTooBig)
  if (spool.receivedCount >= limits.hops) return refuse(Replies.tooManyHops)

  const { content, view: msg } = txn.openMessage(spool)
  const edits = txn.edits
  edits.enter('dataHeadersEnd')
  const headersEnd = await s.runner.chain('dataHeadersEnd', s, msg)
  if (headersEnd.verdict.kind === 'reject' || headersEnd.verdict.kind === 'defer') {
    return refuse(
      verdictReply(headersEnd.verdict, dataPostDefaults) ?? Replies.internalError,
      headersEnd.verdict.disconnect,
    )
  }
  edits.enter('dataPostHeaders')
  await s.runner.all('dataPostHeaders', s, msg)
  const c = s.connection
  // One Authentication-Results from every method's result, above what plugins prepended
  // (Received-SPF) and below our Received; forgeries of our authserv-id removed (RFC 8601 §5).
  const authservId = s.settings.authservId === undefined ? s.settings.me : s.settings.authservId
  writeAuthResults(content.headers, { authservId: authservId ?? undefined, me: s.settings.me }, c, txn)
  const defaultReceived = buildReceived({
    helo: c.helo?.host,
    remoteIp: c.remote.ip,
    remoteHost: c.remoteHost,
    me: s.settings.me,
    protocol: c.helo?.verb === 'HELO' ? 'SMTP' : 'ESMTP',
    tls: c.tls === undefined ? undefined : { version: c.tls.version, cipher: c.tls.cipher },
    authenticated: c.auth !== undefined,
    smtputf8: txn.mailFrom.params.smtputf8,
    queueId: txn.id,
    recipient: txn.recipients.length === 1 ? formatAddress(txn.recipients[0]?.address ?? null) : undefined,
    date: new Date(),
  })
  edits.enter('receivedLine')
  const received = (await s.runner.receivedLine(s, msg, defaultReceived)) ?? defaultReceived
  content.headers.prepend('Received', received)
  txn.notes.set(OwnReceived, received)

  edits.enter('dataPost')
  const post = await s.runner.chain('dataPost', s, msg)
  if (post.verdict.kind === 'reject' || post.verdict.kind === 'defer')
    return refuse(verdictReply(post.verdict, dataPostDefaults) ?? Replies.internalError, post.verdict.disconnect)
  if (post.verdict.kind === 'done') return refuse(Replies.queueDeclined)

  edits.enter('queuePre')
  const pre = await s.runner.chain('queuePre', s, msg)
  if (pre.verdict.kind === 'reject' || pre.verdict.kind === 'defer')
    return refuse(verdictReply(pre.verdict, queueDefaults) ?? Replies.queueFailed, pre.verdict.disconnect)
  if (pre.verdict.kind === 'done') return refuse(Replies.queueDeclined)

  edits.enter('queue')
  const queuedAs = reply(250, '2.0.0', `Queued as ${txn.id}`)
  if (txn.recipients.length === 0) {
    // Plugins removed every recipient: the message goes nowhere, as Postfix does after a milter
    // deletes all recipients (checked with Postfix 3.7). The client gets the usual 250, so a
    // filter's decision is not revealed; the operator gets this line.
    s.log.notice(`message ${txn.id} accepted and discarded: plugins removed every recipient`)
    return { reply: queuedAs, disconnect: false }
  }
  const handoff = performance.now()
  const queued = await s.runner.chain('queue', s, msg)
  const v = queued.verdict
  s.metrics?.queued(queued.plugin ?? '-', queueOutcome(v.kind), (performance.now() - handoff) / 1000)
  if (v.kind === 'accept') {
    const ok = verdictReply(v, { accept: queuedAs, ...queueDefaults })
    edits.enter('queuePost')
    await s.runner.all('queuePost', s, msg)
    return { reply: ok ?? queuedAs, disconnect: false, queue: queued.plugin }
  }
  if (v.kind === 'reject' || v.kind === 'defer')
    return refuse(verdictReply(v, queueDefaults) ?? Replies.queueFailed, v.disconnect)
  return refuse(Replies.queueDeclined)
}

const queueOutcome = (kind: string): QueueOutcome =>
  kind === 'accept' ? 'accepted' : kind === 'defer' ? 'deferred' : kind === 'reject' ? 'rejected' : 'declined'
