/**
 * `ctx.respond()` and `done()`: a hook that answers the client itself gives its reply with
 * respond() and returns done(). The reply is held until the hook returns and sent by the runner
 * only when the two go together, because either alone breaks the dialogue: done() without a
 * reply leaves the client waiting for the command timeout, and a reply with another verdict is a
 * second reply to one command. A broken pairing is a plugin failure (451 4.3.0), found before
 * anything reaches the client.
 */
import { type Reply, replyClass } from '../protocol/reply.ts'
import type { HookName } from './hook-map.ts'
import type { Verdict } from './verdict.ts'

/**
 * The hooks where a plugin may answer the command itself. Elsewhere the core answers: the
 * message hooks (the reply after DATA is the queue's, after a durable hand-off), pre-connection
 * (no reply before the greeting), AUTH (its outcome decides the session's state) and observers.
 */
export const answeringHooks: ReadonlySet<HookName> = new Set<HookName>([
  'connect',
  'helo',
  'ehlo',
  'mailParse',
  'mailPre',
  'mail',
  'rcptParse',
  'rcptPre',
  'rcpt',
  'vrfy',
  'noop',
  'help',
  'quit',
  'unrecognizedCommand',
])

const enhancedCode = /^[245]\.\d{1,3}\.\d{1,3}$/

/** The reply as it will be sent, or why `r` cannot answer a command. */
function finalReply(r: Reply): { reply: Reply } | { why: string } {
  const code: unknown = r?.code
  if (typeof code !== 'number' || !Number.isInteger(code) || code < 200 || code > 599)
    return { why: `reply code ${String(code)} is not 2xx, 4xx or 5xx` }
  // 354 and 334 start exchanges only the core can carry on (message content, SASL).
  if (replyClass(code) === 3) return { why: `reply code ${code} is not a final reply` }
  const lines: unknown = r.lines
  if (!Array.isArray(lines) || lines.length === 0 || !lines.every((l) => typeof l === 'string'))
    return { why: 'reply lines must be a non-empty list of strings' }
  const enhanced: unknown = r.enhanced
  if (enhanced !== undefined && (typeof enhanced !== 'string' || !enhancedCode.test(enhanced)))
    return { why: `enhanced code ${String(enhanced)} is not class.subject.detail` }
  if (typeof enhanced === 'string' && enhanced[0] !== String(code)[0])
    return { why: `enhanced code ${enhanced} does not fit reply code ${code}` }
  return { reply: { code, enhanced: r.enhanced, lines: lines.flatMap((l: string) => l.split('\n')) } }
}

/** One hook call's reply slot. */
export class HookAnswer {
  readonly #hook: HookName
  readonly #late: (message: string) => void
  #reply: Reply | undefined
  #misuse: string | undefined
  #settled = false

  /** `late` is told of a respond() after the hook returned, which can only be logged. */
  constructor(hook: HookName, late: (message: string) => void) {
    this.#hook = hook
    this.#late = late
  }

  /** ctx.respond(): holds the reply; misuse throws into the hook and is remembered. */
  respond(r: Reply): void {
    if (this.#settled) {
      this.#late(`ctx.respond() after hook ${this.#hook} returned: the reply was not sent`)
      return
    }
    let why: string | undefined
    if (!answeringHooks.has(this.#hook)) why = `hook ${this.#hook} cannot answer the client itself`
    else if (this.#reply !== undefined) why = `ctx.respond() was called twice in hook ${this.#hook}`
    else {
      const checked = finalReply(r)
      if ('why' in checked) why = `ctx.respond() in hook ${this.#hook}: ${checked.why}`
      else this.#reply = checked.reply
    }
    if (why === undefined) return
    // Remembered as well as thrown: a plugin that catches the error must still fail.
    this.#misuse ??= why
    throw new Error(why)
  }

  /**
   * After the hook returned `verdict`: the reply to send (for done()), or what is wrong with the
   * pairing. Later respond() calls are refused.
   */
  settle(verdict: Verdict | { readonly kind: string }): { reply?: Reply; problem?: string } {
    this.#settled = true
    if (this.#misuse !== undefined) return { problem: this.#misuse }
    if (verdict.kind === 'done') {
      if (!answeringHooks.has(this.#hook))
        return { problem: `hook ${this.#hook} returned done(), but the core answers in this hook` }
      if (this.#reply === undefined)
        return { problem: `hook ${this.#hook} returned done() without ctx.respond(): the client would get no reply` }
      return { reply: this.#reply }
    }
    if (this.#reply !== undefined)
      return {
        problem: `hook ${this.#hook} called ctx.respond() but returned ${verdict.kind}, not done(): that would be two replies`,
      }
    return {}
  }

  /** The hook failed or timed out: whatever it held is dropped, later calls are refused. */
  abandon(): void {
    this.#settled = true
  }
}
