/**
 * How talking to a milter failed. Every failure ends the milter's connection (its replies can no
 * longer be matched to our commands) and the caller applies the milter's failure policy.
 */

export type MilterErrorCode =
  /** No connection within the connect timeout, or refused. */
  | 'connect'
  /** No reply (or no room to write) within the command or content timeout. */
  | 'timeout'
  /** The milter closed the connection or it broke. */
  | 'closed'
  /** A packet that does not parse: bad length, missing NUL, data where none belongs, bad reply code. */
  | 'malformed'
  /** A packet longer than the configured maximum. */
  | 'oversize'
  /** A modification the milter did not ask for at negotiation, or one outside end of message. */
  | 'unnegotiated'
  /** A reply that makes no sense at this point of the protocol. */
  | 'unexpected'
  /** The negotiation failed: a newer protocol version, or actions we do not offer. */
  | 'negotiation'
  /** Our side gave up: the SMTP client went away or the hook's deadline passed. */
  | 'aborted'

export class MilterError extends Error {
  readonly code: MilterErrorCode

  constructor(code: MilterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'MilterError'
    this.code = code
  }
}
