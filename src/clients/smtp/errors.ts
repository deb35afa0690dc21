/**
 * Why an outbound delivery failed, in a form the queue plugins map to replies: the kind
 * decides the reply (refused and timeouts are temporary; a remote 5xx is permanent), the
 * step says where in the dialogue it happened, for logs and for the "nothing duplicated"
 * reasoning (a failure before the final dot means the next hop has no copy).
 */
import type { RemoteReply } from './wire.ts'

export type FailureKind =
  /** Nobody listens (ECONNREFUSED, missing socket). */
  | 'refused'
  | 'timeout'
  /** The connection broke. */
  | 'dropped'
  /** The next hop answered something we cannot use: malformed reply, data ahead of TLS. */
  | 'protocol'
  /** STARTTLS required but not offered, or the handshake or certificate check failed. */
  | 'tls'
  /** AUTH to the next hop failed or was not offered. */
  | 'auth'
  /** The message needs an extension the next hop lacks (SMTPUTF8, 8BITMIME, ...). */
  | 'incompatible'
  /** The next hop answered with an error reply; see `reply`. */
  | 'reply'

export class OutboundError extends Error {
  readonly kind: FailureKind
  readonly step: string
  readonly reply: RemoteReply | undefined

  constructor(kind: FailureKind, step: string, message: string, reply?: RemoteReply) {
    super(message)
    this.name = 'OutboundError'
    this.kind = kind
    this.step = step
    this.reply = reply
  }

  /** The same failure, reported at the step that noticed it. */
  at(step: string): OutboundError {
    return step === this.step ? this : new OutboundError(this.kind, step, this.message, this.reply)
  }
}

export const isOutboundError = (e: unknown): e is OutboundError => e instanceof OutboundError
