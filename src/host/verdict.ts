/**
 * Verdicts: what a hook answers. qpsmtpd's DECLINED/OK/DENY/DENYSOFT/*_DISCONNECT/DONE
 * and Haraka's CONT/OK/DENY... become one discriminated union, built by helpers, so a
 * plugin never writes a numeric constant or a raw reply string.
 */
import type { EnhancedCode } from '../protocol/reply.ts'

/** Optional wording of the reply that a verdict produces; the hook's default fills the gaps. */
export interface ReplyText {
  readonly code?: number
  readonly enhanced?: EnhancedCode
  readonly text?: string | readonly string[]
}

export type Verdict =
  | { readonly kind: 'pass'; readonly note?: string }
  | { readonly kind: 'accept'; readonly reply?: ReplyText }
  | { readonly kind: 'reject'; readonly reply?: ReplyText; readonly disconnect: boolean }
  | { readonly kind: 'defer'; readonly reply?: ReplyText; readonly disconnect: boolean }
  /** The plugin has answered the client itself (ctx.respond) or taken over the command. */
  | { readonly kind: 'done' }

export type VerdictKind = Verdict['kind']

type TextOrReply = string | readonly string[] | ReplyText | undefined

function toReply(t: TextOrReply): ReplyText | undefined {
  if (t === undefined) return undefined
  if (typeof t === 'string' || Array.isArray(t)) return { text: t as string | readonly string[] }
  return t as ReplyText
}

function withReply<V extends object>(base: V, t: TextOrReply): V {
  const r = toReply(t)
  return r === undefined ? base : { ...base, reply: r }
}

/** Let the next plugin decide (qpsmtpd DECLINED, Haraka CONT). */
export const pass = (note?: string): Verdict => (note === undefined ? PASS : { kind: 'pass', note })
const PASS: Verdict = Object.freeze({ kind: 'pass' })

/** Stop the chain and accept (qpsmtpd OK). */
export const accept = (t?: TextOrReply): Verdict => withReply({ kind: 'accept' as const }, t)

/** Permanent failure (qpsmtpd DENY, or DENY_DISCONNECT with `{ disconnect: true }`). */
export const reject = (t?: TextOrReply, opts?: { disconnect?: boolean }): Verdict =>
  withReply({ kind: 'reject' as const, disconnect: opts?.disconnect ?? false }, t)

/** Temporary failure (qpsmtpd DENYSOFT, or DENYSOFT_DISCONNECT with `{ disconnect: true }`). */
export const defer = (t?: TextOrReply, opts?: { disconnect?: boolean }): Verdict =>
  withReply({ kind: 'defer' as const, disconnect: opts?.disconnect ?? false }, t)

/** The plugin replied itself (qpsmtpd DONE). */
export const done = (): Verdict => DONE_VERDICT
const DONE_VERDICT: Verdict = Object.freeze({ kind: 'done' })

/** qpsmtpd's names, for ported plugins: `return DENY('no such user')`. */
export const DECLINED = (note?: string): Verdict => pass(note)
export const OK = (t?: TextOrReply): Verdict => accept(t)
export const DENY = (t?: TextOrReply): Verdict => reject(t)
export const DENYSOFT = (t?: TextOrReply): Verdict => defer(t)
export const DENY_DISCONNECT = (t?: TextOrReply): Verdict => reject(t, { disconnect: true })
export const DENYSOFT_DISCONNECT = (t?: TextOrReply): Verdict => defer(t, { disconnect: true })
export const DONE = (): Verdict => DONE_VERDICT

export const isRefusal = (v: Verdict): v is Extract<Verdict, { kind: 'reject' | 'defer' }> =>
  v.kind === 'reject' || v.kind === 'defer'
