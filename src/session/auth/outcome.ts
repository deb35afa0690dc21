/**
 * How an AUTH exchange ended, whatever the mechanism, and how a backend's verdict maps to it:
 * accepted (235), refused (535, counted), temporary (454: a backend down, slow or failing: never
 * 535, never accepted), or ended early by the client or a malformed response (501, or nothing
 * when the session is gone).
 */
import type { AuthVerdict } from '../../host/auth.ts'
import type { Reply } from '../../protocol/reply.ts'
import { Replies, verdictReply } from '../replies.ts'
import type { ExchangeEnd } from './channel.ts'

export type AuthOutcome =
  | { readonly kind: 'success'; readonly user: string; readonly reply: Reply }
  /** 535; `user` is the name the client gave, when it gave one, for the log and the counters. */
  | { readonly kind: 'failure'; readonly user: string | undefined }
  | { readonly kind: 'temporary'; readonly reply: Reply; readonly disconnect: boolean }
  | { readonly kind: 'ended'; readonly end: ExchangeEnd }

const authDefaults = { accept: Replies.authOk, reject: Replies.authFailed, defer: Replies.authTempFail }

/** A name the session may be authenticated as: it reaches logs and the Authentication-Results field. */
const userName = /^[^\p{Cc}]{1,255}$/u

export const ended = (end: ExchangeEnd): AuthOutcome => ({ kind: 'ended', end })
export const failure = (user: string | undefined): AuthOutcome => ({ kind: 'failure', user })
export const temporary: AuthOutcome = { kind: 'temporary', reply: Replies.authTempFail, disconnect: false }

/**
 * What a chain's verdict means. `user` is the name the client gave (accept() keeps it); `pass`
 * means no backend knew the user: refused like a wrong password, so names cannot be probed.
 */
export function outcomeOf(v: AuthVerdict, user: string | undefined, complain: (m: string) => void): AuthOutcome {
  switch (v.kind) {
    case 'accept':
      if (user === undefined) {
        complain('accept() where the core does not know the user: use authenticated(user)')
        return temporary
      }
      return { kind: 'success', user, reply: verdictReply(v, authDefaults) ?? Replies.authOk }
    case 'authenticated':
      if (typeof v.user !== 'string' || !userName.test(v.user) || Buffer.byteLength(v.user) > 255) {
        complain(`authenticated() with an unusable user name ${JSON.stringify(String(v.user).slice(0, 64))}`)
        return temporary
      }
      return {
        kind: 'success',
        user: v.user,
        reply: verdictReply({ kind: 'accept', ...(v.reply ? { reply: v.reply } : {}) }, authDefaults) ?? Replies.authOk,
      }
    case 'reject':
    case 'pass':
      return failure(user)
    case 'defer': {
      // The runner's failure verdict (451 4.3.0) is not an AUTH reply: RFC 4954 §6 has 454 4.7.0.
      const r = verdictReply(v, authDefaults) ?? Replies.authTempFail
      if (v.disconnect) return { kind: 'temporary', reply: r, disconnect: true }
      return { kind: 'temporary', reply: r.code === 454 ? r : Replies.authTempFail, disconnect: false }
    }
    case 'done':
      return temporary
  }
}
