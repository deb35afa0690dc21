/**
 * One SMTP connection's dealings with one milter: the milter session (one per SMTP session,
 * as Postfix opens them), what stands for the rest of the connection after a failure or a
 * connection-level refusal, and the state of the current message.
 */
import type { MilterSession } from '../../clients/milter/index.ts'
import type { Refusal } from './replies.ts'

/**
 * What every later command of the connection gets, as Postfix keeps a milter's reply after it
 * failed or refused the connection: the failure policy, a refusal, or quarantine of every message.
 */
export type Standing =
  | { readonly kind: 'policy'; readonly policy: 'tempfail' | 'reject' }
  | { readonly kind: 'refusal'; readonly refusal: Refusal }
  | { readonly kind: 'quarantine'; readonly reason: string }

export class Link {
  /** Undefined before connect, after the milter accepted the connection, and after a failure. */
  session: MilterSession | undefined
  standing: Standing | undefined
  /**
   * `open`: MAIL went to the milter and its end of message has not; `done`: the milter decided
   * about this message early (accept, discard, a refusal) and hears no more of it.
   */
  message: 'none' | 'open' | 'done' = 'none'
  /** The milter discarded the message at MAIL, RCPT or DATA: at its end, every recipient goes. */
  discard = false

  /** A new MAIL: a message still open at the milter is aborted first. */
  startMessage(): void {
    this.endMessage()
    this.message = 'none'
    this.discard = false
  }

  /** The message ends without end of message (RSET, a refusal, an early decision): SMFIC_ABORT. */
  endMessage(): void {
    if (this.message === 'open') this.session?.abort()
    if (this.message !== 'none') this.message = 'done'
  }

  /** Forgets the milter for the rest of the connection: it accepted it, or it failed. */
  drop(how: 'quit' | 'destroy'): void {
    const s = this.session
    this.session = undefined
    if (s === undefined) return
    if (how === 'destroy') s.destroy()
    else void s.quit().catch(() => {})
  }
}
