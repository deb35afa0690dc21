/**
 * Every limit, timeout and protocol policy of a session, with its safe default.
 * docs/limits.md lists each with its config key; server/core-settings.ts reads them.
 */
import type { BareLineEndingPolicy } from '../protocol/codec.ts'

export interface Limits {
  /** Command line, CRLF included (RFC 5321 §4.5.3.1.4). */
  readonly commandLine: number
  /** A SASL response line during AUTH (RFC 4954 §4 allows 12288 octets). */
  readonly authLine: number
  /** Message size in octets, advertised as SIZE (qpsmtpd `databytes`). 0 = unlimited. */
  readonly messageSize: number
  /** Longest line of message content, CRLF excluded. */
  readonly dataLine: number
  /** Size of the header section. */
  readonly headerSize: number
  readonly recipients: number
  /** RCPTs past `recipients` answered 452 without counting as errors (Postfix smtpd_recipient_overshoot_limit). */
  readonly recipientOvershoot: number
  /** Received headers before a message is a loop (qpsmtpd's loop plugin: 100). */
  readonly hops: number
  readonly unknownCommands: number
  /** NOOP, RSET, VRFY, HELP... without a transaction between them (Postfix junk_command_limit). */
  readonly junkCommands: number
  /** Errors after which each error reply is delayed by errorDelayMs. */
  readonly softErrors: number
  /** Errors after which the session is closed with 421. */
  readonly hardErrors: number
  readonly authFailures: number
  readonly messagesPerSession: number
  readonly commandsPerSession: number
}

export interface Timeouts {
  /** Waiting for one whole command line (a per-request deadline, not per read). */
  readonly commandMs: number
  /** Waiting for message content when no bytes arrive. */
  readonly dataMs: number
  /** The whole session. */
  readonly sessionMs: number
  /** Minimum content rate in octets/s once the first dataMs window is used (0 = off). */
  readonly minDataRate: number
  readonly tlsHandshakeMs: number
  readonly errorDelayMs: number
  readonly authFailureDelayMs: number
  /** Pause before the greeting (earlytalker-style); 0 = greet at once. */
  readonly greetingDelayMs: number
}

export interface Policies {
  readonly bareLineEndings: BareLineEndingPolicy
  /** Refuse clients that talk before the greeting or pipeline when they may not (Postfix 3.9). */
  readonly enforceSync: boolean
  readonly authRequiresTls: boolean
  /** Refuse MAIL without angle brackets and `FROM: <x>` forms (Postfix strict_rfc821_envelopes). */
  readonly strictEnvelopes: boolean
  readonly smtputf8: boolean
  readonly chunking: boolean
  readonly dsn: boolean
  readonly requireTlsExtension: boolean
  /** Reject commands other than EHLO/HELO/NOOP/RSET/QUIT/STARTTLS until TLS is on (RFC 3207 §4). */
  readonly tlsRequired: boolean
  /** Submission: MAIL needs an authenticated session. */
  readonly authRequired: boolean
}

export interface SessionSettings {
  readonly me: string
  /**
   * The authserv-id of the Authentication-Results header (qpsmtpd `me-auth-results`, default
   * `me`); null when `me-auth-results` is `none` and no header is written.
   */
  readonly authservId?: string | null | undefined
  readonly greeting: string
  readonly limits: Limits
  readonly timeouts: Timeouts
  readonly policies: Policies
  readonly spoolDir: string
  readonly spoolMemoryThreshold: number
}

export const defaultLimits: Limits = {
  commandLine: 512,
  authLine: 12_288,
  messageSize: 52_428_800,
  dataLine: 65_536,
  headerSize: 102_400,
  recipients: 1000,
  recipientOvershoot: 1000,
  hops: 100,
  unknownCommands: 10,
  junkCommands: 100,
  softErrors: 10,
  hardErrors: 20,
  authFailures: 3,
  messagesPerSession: 1000,
  commandsPerSession: 100_000,
}

export const defaultTimeouts: Timeouts = {
  commandMs: 300_000,
  dataMs: 300_000,
  sessionMs: 3_600_000,
  minDataRate: 500,
  tlsHandshakeMs: 30_000,
  errorDelayMs: 1000,
  authFailureDelayMs: 1000,
  greetingDelayMs: 0,
}

export const defaultPolicies: Policies = {
  bareLineEndings: 'reject',
  enforceSync: true,
  authRequiresTls: true,
  strictEnvelopes: false,
  smtputf8: true,
  chunking: true,
  dsn: true,
  requireTlsExtension: true,
  tlsRequired: false,
  authRequired: false,
}
