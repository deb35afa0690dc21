/**
 * The hooks behind queue/smtp-forward and queue/lmtp: an optional RCPT-time check over a
 * live session to the next hop (kept for the queue step), and the queue hook that hands the
 * message over and answers 250 only after the hop's 2xx (docs/queues.md).
 *
 * Policy (RFC 5321 gives a message one reply; LMTP gives one per recipient, RFC 2033 §4.2):
 *  - RCPT-time refusals by the hop (with check_rcpt) are the client's per-recipient answers.
 *  - At queue time the content goes out only if the hop accepts *every* recipient; else RSET
 *    and one reply for all (verdicts.ts mixedVerdict). Nothing is sent to a subset.
 *  - LMTP outcomes that differ after DATA: 451 if any is temporary (at-least-once), else 5xx.
 */

import { OutboundError } from '../../../clients/smtp/errors.ts'
import type { OpenSession, Relay } from '../../../clients/smtp/relay.ts'
import type { ClientIdentity } from '../../../clients/smtp/smtp-client.ts'
import {
  checkCompatible,
  envelopeOf,
  mailCommand,
  type OutboundEnvelope,
  rcptCommand,
  sendContent,
  sendEnvelope,
} from '../../../clients/smtp/transaction.ts'
import { type RemoteReply, replyText } from '../../../clients/smtp/wire.ts'
import type { HookContext, Message, TxnContext } from '../../../host/context.ts'
import type { Hooks, QueueHook, RcptHook } from '../../../host/hook-map.ts'
import { defineKey } from '../../../host/keys.ts'
import { accept, pass, type Verdict } from '../../../host/verdict.ts'
import { formatAddress, type MailFrom, type RcptTo } from '../../../protocol/envelope.ts'
import {
  describeFailure,
  failureVerdict,
  fromRemote,
  mailRefusal,
  mixedVerdict,
  type RecipientReply,
} from './verdicts.ts'

interface Held {
  readonly session: OpenSession
  /** The sender the session's MAIL named: a plugin may have changed the transaction's since. */
  readonly mailFrom: MailFrom
  /** Recipients the hop accepted, in RCPT order (LMTP answers after DATA in this order). */
  readonly accepted: string[]
  /** The same recipients as the transaction records them, to spot plugin edits. */
  readonly recipients: Set<RcptTo>
}

export function identityOf(ctx: HookContext): ClientIdentity {
  const c = ctx.connection
  return {
    addr: c.remote.ip,
    port: c.remote.port,
    name: c.remoteHost,
    helo: c.helo?.host,
    proto: c.helo?.verb === 'HELO' ? 'SMTP' : 'ESMTP',
    login: c.auth?.user,
  }
}

const isStale = (e: unknown) => e instanceof OutboundError && (e.kind === 'dropped' || e.kind === 'timeout')

export function outboundHooks(name: string, relay: Relay, checkRcpt: boolean): Hooks {
  const HeldKey = defineKey<Held | undefined>(`${name}/held-session`, { scope: 'transaction', initial: undefined })

  const takeHeld = (ctx: TxnContext | HookContext): Held | undefined => {
    if (ctx.transaction === undefined) return undefined
    const held = ctx.get(HeldKey)
    if (held !== undefined) ctx.set(HeldKey, undefined)
    return held
  }

  const rcpt: RcptHook = async (ctx, to) => {
    let held = ctx.get(HeldKey)
    if (held !== undefined && !held.session.client.usable) {
      relay.release((takeHeld(ctx) as Held).session, false)
      held = undefined
    }
    try {
      if (held === undefined) {
        const env = { ...envelopeOf(ctx.transaction, 0), recipients: [] }
        const session = await relay.open(env, identityOf(ctx), ctx.log)
        const mail = await session.client.ask(mailCommand(session.client, env), 'MAIL')
        if (mail.code >= 300) {
          relay.release(session, true)
          ctx.log.info(`next hop refuses the sender: ${replyText(mail)}`)
          return mailRefusal(mail)
        }
        held = { session, mailFrom: ctx.transaction.mailFrom, accepted: [], recipients: new Set() }
        ctx.set(HeldKey, held)
      }
      const address = formatAddress(to.address)
      const r = await held.session.client.ask(rcptCommand(held.session.client, outboundRecipient(to)), 'RCPT')
      if (r.code < 300) {
        held.accepted.push(address)
        held.recipients.add(to)
        return pass('next hop accepts the recipient')
      }
      ctx.log.info(`next hop refuses <${address}>: ${replyText(r)}`)
      return fromRemote(r)
    } catch (e) {
      const h = takeHeld(ctx)
      if (h !== undefined) relay.release(h.session, false)
      ctx.log.warn(`recipient check failed: ${describeFailure(e)}`)
      return failureVerdict(e)
    }
  }

  const queue: QueueHook = async (ctx, msg) => {
    const env = envelopeOf(ctx.transaction, msg.size)
    const held = takeHeld(ctx)
    if (held !== undefined) {
      const done = await viaHeld(ctx, msg, env, held)
      if (done !== undefined) return done
    }
    return deliverFresh(ctx, msg, env)
  }

  /**
   * The session opened at RCPT time, when it still matches the transaction; undefined: start over
   * (also when a plugin changed the sender or the recipients after RCPT).
   */
  async function viaHeld(
    ctx: TxnContext,
    msg: Message,
    env: OutboundEnvelope,
    held: Held,
  ): Promise<Verdict | undefined> {
    const txn = ctx.transaction
    const same =
      held.session.client.usable &&
      txn.mailFrom === held.mailFrom &&
      txn.recipients.length === held.recipients.size &&
      txn.recipients.every((r) => held.recipients.has(r))
    if (!same) {
      relay.release(held.session, held.session.client.usable)
      return undefined
    }
    try {
      checkCompatible(held.session.client, env)
      const replies = await sendContent(held.session.client, msg.stream(), env.body, held.accepted.length)
      relay.release(held.session, true)
      return contentVerdict(ctx, held.session.key, held.accepted, replies)
    } catch (e) {
      relay.release(held.session, false)
      // The hop dropped the held session before taking any content: start over on a new one.
      if (e instanceof OutboundError && e.step === 'DATA' && isStale(e)) return undefined
      ctx.log.warn(`delivery failed: ${describeFailure(e)}`)
      return failureVerdict(e)
    }
  }

  async function deliverFresh(ctx: TxnContext, msg: Message, env: OutboundEnvelope): Promise<Verdict> {
    for (let attempt = 0; ; attempt++) {
      let session: OpenSession
      try {
        session = await relay.open(env, identityOf(ctx), ctx.log)
      } catch (e) {
        ctx.log.warn(`no next hop took the message: ${describeFailure(e)}`)
        return failureVerdict(e)
      }
      const reused = session.client.messages > 0
      let stage = 'envelope'
      try {
        const rep = await sendEnvelope(session.client, env)
        if (rep.mail.code >= 300) {
          relay.release(session, true)
          ctx.log.info(`next hop refuses the sender: ${replyText(rep.mail)}`)
          return mailRefusal(rep.mail)
        }
        const results = env.recipients.map((r, i) => ({ address: r.address, reply: rep.rcpts[i] as RemoteReply }))
        if (results.some((x) => x.reply.code >= 300)) {
          relay.release(session, true)
          for (const x of results) ctx.log.info(`next hop RCPT <${x.address}>: ${replyText(x.reply)}`)
          if (results.length === 1) return fromRemote(results[0]?.reply as RemoteReply)
          return results.every((x) => x.reply.code >= 500)
            ? fromRemote(
                results[0]?.reply as RemoteReply,
                results.map((x) => `<${x.address}>: ${x.reply.lines.join(' ')}`),
              )
            : mixedVerdict(results, false)
        }
        stage = 'content'
        const replies = await sendContent(session.client, msg.stream(), env.body, results.length)
        relay.release(session, true)
        return contentVerdict(
          ctx,
          session.key,
          results.map((x) => x.address),
          replies,
        )
      } catch (e) {
        relay.release(session, false)
        // A pooled session the hop had closed: one fresh try, nothing was sent yet.
        if (reused && attempt === 0 && stage === 'envelope' && isStale(e)) continue
        ctx.log.warn(`delivery failed: ${describeFailure(e)}`)
        return failureVerdict(e)
      }
    }
  }

  function contentVerdict(
    ctx: TxnContext,
    hop: string,
    addresses: readonly string[],
    replies: readonly RemoteReply[],
  ): Verdict {
    const results: RecipientReply[] = replies.map((reply, i) => ({ address: addresses[i] ?? '?', reply }))
    // The hop's answer goes into the message's log line. SMTP answers once for every recipient,
    // LMTP once per recipient (RFC 2033 §4.2).
    const perRecipient = relay.options.client.protocol === 'lmtp'
    for (const x of results)
      ctx.result(
        x.reply.code < 300 ? 'pass' : 'fail',
        `${hop}${perRecipient ? ` <${x.address}>` : ''} said ${replyText(x.reply)}`,
      )
    const first = replies[0] as RemoteReply
    if (results.every((x) => x.reply.code < 300)) {
      return accept({
        code: 250,
        enhanced: '2.0.0',
        text: `Queued as ${ctx.transaction.id} (next hop: ${first.lines[0] ?? 'ok'})`.slice(0, 400),
      })
    }
    if (results.length === 1) return fromRemote(first)
    return mixedVerdict(
      results,
      results.some((x) => x.reply.code < 300),
    )
  }

  const resetTransaction = (ctx: HookContext): void => {
    const held = takeHeld(ctx)
    if (held !== undefined) relay.release(held.session, held.session.client.usable)
  }

  return checkRcpt ? { rcpt, queue, resetTransaction } : { queue, resetTransaction }
}

function outboundRecipient(to: RcptTo) {
  return { address: formatAddress(to.address), notify: to.params.notify, orcpt: to.params.orcpt }
}
