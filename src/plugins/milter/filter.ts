/**
 * One configured milter across the SMTP session: each hook reports its event and turns the
 * milter's decision into the hook's verdict. A milter's accept means "no more filtering" (of the
 * connection at connect and HELO, of the message later), never "accept" for the other plugins:
 * a recipient the milter accepts still needs rcpt_ok. A failure (no connection, silence, death,
 * a packet that does not parse, an action it did not negotiate) is logged and ends in the
 * milter's default_action, which then stands for the rest of the connection, as in Postfix.
 */
import {
  type Decision,
  type MacroLookup,
  MilterError,
  MilterSession,
  type MilterSessionOptions,
} from '../../clients/milter/index.ts'
import type { HookContext, Message, TxnContext } from '../../host/context.ts'
import { Quarantined } from '../../host/conventions.ts'
import { OwnReceived } from '../../host/message.ts'
import { defer, pass, type Verdict } from '../../host/verdict.ts'
import type { Counter, Labelled } from '../../metrics/index.ts'
import { normalizeIp } from '../../net/index.ts'
import { formatAddress, type MailFrom, type RcptTo } from '../../protocol/envelope.ts'
import { encodeXtext } from '../../protocol/xtext.ts'
import { applyEdits, Changes, sendHeaders, visibleFields } from './content.ts'
import { Link } from './link.ts'
import { type MacroSettings, macroLookup } from './macros.ts'
import { policyVerdict, type Refusal, refusalVerdict, type Stage } from './replies.ts'

export interface FilterSettings {
  /** The operator's name for the milter (logs, results, quarantine reasons). */
  readonly name: string
  readonly session: Omit<MilterSessionOptions, 'signal' | 'name'>
  readonly defaultAction: 'tempfail' | 'accept' | 'reject' | 'quarantine'
  readonly quarantine: 'reject' | 'hold' | 'header'
  readonly maxEditBytes: number
  readonly macros: MacroSettings
  readonly decisions: Labelled<'milter' | 'event' | 'decision', Counter>
  readonly failures: Labelled<'milter' | 'error', Counter>
}

const connectionStages: ReadonlySet<Stage> = new Set(['connect', 'helo'])
const messageStages: ReadonlySet<Stage> = new Set(['mail', 'rcpt', 'data', 'content'])

export class MilterFilter {
  readonly #s: FilterSettings
  readonly #links = new WeakMap<object, Link>()

  constructor(settings: FilterSettings) {
    this.#s = settings
  }

  async connect(ctx: HookContext): Promise<Verdict> {
    const link = new Link()
    this.#links.set(ctx.connection, link)
    try {
      link.session = await MilterSession.open({ ...this.#s.session, name: this.#s.name, signal: ctx.signal })
    } catch (e) {
      return this.#failed(ctx, link, e, 'connect')
    }
    const c = ctx.connection
    const ip = normalizeIp(c.remote.ip)
    const family = ip === undefined ? 'U' : ip.includes(':') ? '6' : '4'
    // Postfix's form of an unverified client: its address in brackets.
    const host = c.remoteHost ?? (ip === undefined ? 'unknown' : `[${ip}]`)
    return this.#ask(ctx, link, 'connect', (s) =>
      s.connect(host, family, c.remote.port, ip ?? '', this.#macros(ctx), ctx.signal),
    )
  }

  helo(ctx: HookContext, host: string): Promise<Verdict> {
    return this.#ask(ctx, this.#link(ctx), 'helo', (s) => s.helo(host, this.#macros(ctx), ctx.signal))
  }

  mail(ctx: TxnContext, from: MailFrom): Promise<Verdict> {
    const link = this.#link(ctx)
    link.startMessage()
    return this.#ask(ctx, link, 'mail', (s) => {
      link.message = 'open'
      return s.mail(mailArgs(from), this.#macros(ctx), ctx.signal)
    })
  }

  rcpt(ctx: TxnContext, to: RcptTo): Promise<Verdict> {
    return this.#ask(ctx, this.#link(ctx), 'rcpt', (s) => s.rcpt(rcptArgs(to), this.#macros(ctx, to), ctx.signal))
  }

  data(ctx: TxnContext): Promise<Verdict> {
    return this.#ask(ctx, this.#link(ctx), 'data', (s) => s.data(this.#macros(ctx), ctx.signal))
  }

  unknown(ctx: HookContext, verb: string, args: string): Promise<Verdict> {
    const line = args === '' ? verb : `${verb} ${args}`
    return this.#ask(ctx, this.#link(ctx), 'unknown', (s) => s.unknown(line, this.#macros(ctx), ctx.signal))
  }

  /** RSET, a new EHLO, the end of a message, a disconnect. */
  reset(ctx: HookContext): void {
    const link = this.#links.get(ctx.connection)
    if (link === undefined) return
    link.endMessage()
    link.message = 'none'
  }

  async disconnect(ctx: HookContext): Promise<void> {
    const link = this.#links.get(ctx.connection)
    this.#links.delete(ctx.connection)
    link?.drop('quit')
  }

  /** The message: headers, body, end of message; the milter's changes; its verdict. */
  async content(ctx: TxnContext, msg: Message): Promise<Verdict> {
    const link = this.#link(ctx)
    const quarantine: string[] = []
    if (link.standing?.kind === 'quarantine') quarantine.push(link.standing.reason)
    else if (link.standing !== undefined) return this.#standingVerdict(link, 'content')
    const session = link.session
    if (link.discard) return this.#discard(ctx)
    if (session === undefined || link.message !== 'open') return this.#quarantine(ctx, msg, quarantine)
    const started = performance.now()
    const own = ctx.get(OwnReceived)
    const changes = new Changes(msg, this.#s.maxEditBytes)
    let decision: Decision
    try {
      decision = await sendHeaders(session, visibleFields(msg.headers.fields, own), this.#macros(ctx), ctx.signal)
      if (decision.kind === 'continue' && session.wantsBody) decision = await this.#sendBody(session, msg, ctx.signal)
      if (decision.kind === 'continue' || decision.kind === 'skip')
        decision = await session.endOfMessage(this.#macros(ctx), changes.sink, ctx.signal)
      else link.endMessage()
    } catch (e) {
      await changes.dropBody(e as Error)
      if (changes.localError !== undefined) return this.#localFailure(ctx, changes.localError)
      return this.#contentFailed(ctx, msg, link, e)
    }
    if (link.message === 'open') link.message = 'none'
    this.#count('eom', decision)
    if (decision.kind !== 'continue' && decision.kind !== 'accept' && decision.kind !== 'skip') {
      await changes.dropBody(new Error(`the milter decided ${decision.kind}`))
      return this.#interpret(ctx, link, 'content', decision)
    }
    try {
      await changes.commitBody()
    } catch (e) {
      return this.#localFailure(ctx, e as Error)
    }
    try {
      applyEdits(ctx, msg, changes.edits, session.negotiated.protocol, own)
    } catch (e) {
      return this.#contentFailed(
        ctx,
        msg,
        link,
        new MilterError('malformed', `a change it asked for: ${(e as Error).message}`),
      )
    }
    const what = [
      `${changes.edits.length} changes`,
      ...(changes.bodyReplaced ? ['body replaced'] : []),
      `${Math.round(performance.now() - started)} ms`,
    ]
    ctx.result('pass', `${decision.kind}, ${what.join(', ')}`)
    return this.#quarantine(ctx, msg, [...quarantine, ...changes.quarantine])
  }

  /** The hold guard: a message marked for quarantine that no quarantine queue took. */
  holdGuard(ctx: TxnContext): Verdict {
    if (ctx.get(Quarantined).length === 0) return pass()
    ctx.log.error(
      `message ${ctx.transaction.id} is marked for quarantine, but no queue/quarantine with marked_only ` +
        'took it before this milter line in config/plugins: deferred',
    )
    return defer({ code: 451, enhanced: '4.3.0', text: 'Message held for quarantine; try again later' })
  }

  async #sendBody(session: MilterSession, msg: Message, signal: AbortSignal): Promise<Decision> {
    for await (const chunk of msg.bodyStream()) {
      const d = await session.body(chunk as Buffer, signal)
      if (d.kind !== 'continue') return d
    }
    return { kind: 'continue' }
  }

  async #ask(ctx: HookContext, link: Link, stage: Stage, call: (s: MilterSession) => Promise<Decision>) {
    if (link.standing !== undefined && link.standing.kind !== 'quarantine') return this.#standingVerdict(link, stage)
    const session = link.session
    if (session === undefined) return pass()
    if (messageStages.has(stage) && stage !== 'mail' && link.message !== 'open') return pass()
    let decision: Decision
    try {
      decision = await call(session)
    } catch (e) {
      return this.#failed(ctx, link, e, stage)
    }
    this.#count(stage, decision)
    return this.#interpret(ctx, link, stage, decision)
  }

  #interpret(ctx: HookContext, link: Link, stage: Stage, d: Decision): Verdict {
    const atConnection = connectionStages.has(stage)
    switch (d.kind) {
      case 'continue':
      case 'skip':
        return pass()
      case 'accept':
        if (atConnection) link.drop('quit')
        else if (stage !== 'unknown') link.endMessage()
        return pass(`milter ${this.#s.name} accepted`)
      case 'discard':
        if (atConnection || stage === 'unknown') {
          ctx.log.warn(`milter ${this.#s.name}: discard is not allowed at ${stage}; ignored`)
          return pass()
        }
        ctx.result('info', `discard at ${stage}`)
        if (stage === 'content') return this.#discard(ctx as TxnContext)
        link.discard = true
        link.endMessage()
        return pass()
      case 'reject':
      case 'tempfail':
      case 'shutdown':
      case 'replyCode': {
        let verdict: Verdict
        try {
          verdict = refusalVerdict(stage, d)
        } catch (e) {
          return this.#failed(ctx, link, e, stage)
        }
        ctx.result('fail', `${d.kind === 'replyCode' ? d.text.split(/\r?\n/)[0] : d.kind} at ${stage}`)
        if (atConnection || d.kind === 'shutdown') {
          link.standing = { kind: 'refusal', refusal: d as Refusal }
          link.drop('quit')
        } else if (stage !== 'rcpt' && stage !== 'unknown') link.endMessage()
        return verdict
      }
    }
  }

  #standingVerdict(link: Link, stage: Stage): Verdict {
    const standing = link.standing
    if (standing?.kind === 'policy') return policyVerdict(stage, standing.policy)
    if (standing?.kind === 'refusal') return refusalVerdict(stage, standing.refusal)
    return pass()
  }

  #failed(ctx: HookContext, link: Link, e: unknown, stage: Stage): Verdict {
    const err = e instanceof MilterError ? e : new MilterError('closed', (e as Error)?.message ?? String(e))
    const policy = this.#s.defaultAction
    ctx.log.error(`milter ${this.#s.name}: ${err.message} (at ${stage}); default_action ${policy}`)
    ctx.result('error', `${err.code} at ${stage}; ${policy}`)
    this.#s.failures.labels({ milter: this.#s.name, error: err.code }).inc()
    link.drop('destroy')
    if (policy === 'accept') return pass()
    if (policy === 'quarantine') {
      link.standing = { kind: 'quarantine', reason: `milter failed: ${err.code}` }
      return pass()
    }
    link.standing = { kind: 'policy', policy }
    return policyVerdict(stage, policy)
  }

  /** A failure at the message: with default_action quarantine, this message is the first held. */
  #contentFailed(ctx: TxnContext, msg: Message, link: Link, e: unknown): Verdict {
    const verdict = this.#failed(ctx, link, e, 'content')
    const standing = link.standing
    return standing?.kind === 'quarantine' ? this.#quarantine(ctx, msg, [standing.reason]) : verdict
  }

  /** Our side could not apply the milter's changes (the spool): 451, whatever the policy. */
  #localFailure(ctx: HookContext, e: Error): Verdict {
    ctx.log.error(`milter ${this.#s.name}: the replaced body could not be written: ${e.message}`)
    return defer({ code: 451, enhanced: '4.3.0', text: 'Error: queue file write error; try again later' })
  }

  #discard(ctx: TxnContext): Verdict {
    const txn = ctx.transaction
    for (const r of [...txn.recipients]) txn.removeRecipient(formatAddress(r.address))
    ctx.log.info(`message ${txn.id} discarded by milter ${this.#s.name}`)
    return pass(`discarded by milter ${this.#s.name}`)
  }

  #quarantine(ctx: TxnContext, msg: Message, reasons: readonly string[]): Verdict {
    if (reasons.length === 0) return pass()
    const why = reasons.map((r) => `milter ${this.#s.name}: ${r}`)
    ctx.log.notice(`message ${ctx.transaction.id} quarantined: ${why.join('; ')}`)
    switch (this.#s.quarantine) {
      case 'hold':
        ctx.get(Quarantined).push(...why)
        return pass()
      case 'header':
        for (const w of why) msg.headers.add('X-Quarantine', w)
        return pass()
      case 'reject':
        return refusalVerdict('content', { kind: 'replyCode', text: '554 5.7.1 Message quarantined' })
    }
  }

  #link(ctx: HookContext): Link {
    let link = this.#links.get(ctx.connection)
    if (link === undefined) {
      // A session that started before this plugin was loaded (never through connect).
      link = new Link()
      this.#links.set(ctx.connection, link)
    }
    return link
  }

  #macros(ctx: HookContext, rcpt?: RcptTo): MacroLookup {
    return macroLookup(ctx, this.#s.macros, rcpt)
  }

  #count(event: string, d: Decision): void {
    this.#s.decisions.labels({ milter: this.#s.name, event, decision: d.kind }).inc()
  }
}

/** MAIL's arguments: `<sender>`, then its ESMTP parameters as the client could have sent them. */
export function mailArgs(from: MailFrom): string[] {
  const p = from.params
  const args = [`<${formatAddress(from.address)}>`]
  if (p.size !== undefined) args.push(`SIZE=${p.size}`)
  if (p.body !== undefined) args.push(`BODY=${p.body}`)
  if (p.smtputf8) args.push('SMTPUTF8')
  if (p.requireTls) args.push('REQUIRETLS')
  if (p.ret !== undefined) args.push(`RET=${p.ret}`)
  if (p.envidEncoded !== undefined) args.push(`ENVID=${p.envidEncoded}`)
  if (p.auth !== undefined) args.push(`AUTH=${p.auth === '<>' ? '<>' : encodeXtext(p.auth)}`)
  for (const [k, v] of p.other) args.push(v === undefined ? k : `${k}=${v}`)
  return args
}

export function rcptArgs(to: RcptTo): string[] {
  const p = to.params
  const args = [`<${formatAddress(to.address)}>`]
  if (p.notify !== undefined) args.push(`NOTIFY=${p.notify.join(',')}`)
  if (p.orcpt !== undefined) args.push(`ORCPT=${p.orcpt.type};${p.orcpt.encoded}`)
  for (const [k, v] of p.other) args.push(v === undefined ? k : `${k}=${v}`)
  return args
}
