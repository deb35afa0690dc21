/**
 * What a hook sees: the connection, the transaction (when one is open), an AbortSignal,
 * a logger and typed notes. One context object per hook call, so `ctx.log` and
 * `ctx.result()` know which plugin is speaking.
 */
import type { ListenerInfo } from '../config/listener-selector.ts'
import type { BodyType, MailFrom, RcptTo } from '../protocol/envelope.ts'
import type { Reply } from '../protocol/reply.ts'
import type { Key, Notes } from './keys.ts'
import type { Logger } from './logger.ts'
import type { ResultKind, Results } from './results.ts'

// Listeners are named in configuration (config/plugins selectors), so config owns their types.
export type { ListenerInfo, ListenerRole } from '../config/listener-selector.ts'

export interface Peer {
  readonly ip: string
  readonly port: number
}

export interface TlsInfo {
  readonly version: string
  readonly cipher: string
  readonly servername: string | undefined
}

export interface Helo {
  readonly verb: 'HELO' | 'EHLO'
  readonly host: string
}

export interface AuthInfo {
  readonly user: string
  readonly mechanism: string
}

export interface Connection {
  readonly id: string
  readonly remote: Peer
  /** The client's verified host name, when a plugin (fcrdns, dns) has set it. */
  remoteHost: string | undefined
  readonly local: Peer
  readonly listener: ListenerInfo
  readonly startedAt: Date
  readonly tls: TlsInfo | undefined
  readonly helo: Helo | undefined
  readonly auth: AuthInfo | undefined
  /** Allowed to relay (qpsmtpd relay_client): set by the relay plugin, AUTH and RELAYCLIENT. */
  relayClient: boolean
  readonly notes: Notes
  readonly results: Results
  /** Messages accepted on this connection so far. */
  readonly messageCount: number
}

export type { BodySource, HeaderField, Message, MessageHeaders, MessageStreamOptions } from './message.ts'

/**
 * One mail transaction, MAIL to the end of the message. The envelope edits are the core's
 * (host/transaction.ts): allowed in dataPost and queuePre, checked like what clients send,
 * logged, and what every queue plugin then receives.
 */
export interface Transaction {
  readonly id: string
  /** The sender; setSender() replaces it. */
  readonly mailFrom: MailFrom
  /** The recipients the rcpt hooks accepted, as plugins edited them since. */
  readonly recipients: readonly RcptTo[]
  readonly body: BodyType
  readonly notes: Notes
  readonly results: Results
  /**
   * Adds a recipient (`a@b` or `<a@b>`, optional DSN parameters `NOTIFY=... ORCPT=...`); false
   * when it is a recipient already. No rcpt hook sees it: relaying to it is the plugin's call.
   * @example ctx.transaction.addRecipient('archive@example.org', 'NOTIFY=NEVER')
   */
  addRecipient(address: string, params?: string): boolean
  /**
   * Removes the recipient (domain compared case-insensitively); returns how many were removed.
   * With none left, the message is accepted and stored nowhere (as Postfix does after a milter).
   */
  removeRecipient(address: string): number
  /**
   * Changes the sender (`a@b`, `<a@b>`, or `<>`); `RET=`, `ENVID=` and `AUTH=` in `params`
   * replace the client's, other parameters the client sent stay.
   */
  setSender(address: string, params?: string): MailFrom
}

export interface ServerInfo {
  /** This host's name (config `me`). */
  readonly me: string
  readonly version: string
}

export interface HookContext {
  readonly connection: Connection
  readonly transaction: Transaction | undefined
  readonly server: ServerInfo
  /** Aborted when the hook times out or the client goes away. */
  readonly signal: AbortSignal
  readonly log: Logger
  /** The name of the plugin instance this context was made for. */
  readonly plugin: string
  /** Reads a typed note from the connection or transaction notes, by the key's scope. */
  get<T>(key: Key<T>): T
  set<T>(key: Key<T>, value: T): void
  /** Records a result for this plugin (qpsmtpd's pass/fail/skip log convention). */
  result(kind: ResultKind, message?: string): void
  /**
   * The reply to this command, sent when the hook returns `done()` (and only then: any other
   * verdict, or done() without it, is a plugin failure, 451 4.3.0). Only in the hooks where a
   * plugin may answer itself (`answeringHooks`: connect, helo/ehlo, mail, rcpt and their
   * parse/pre hooks, vrfy, noop, help, quit, unrecognizedCommand); a final reply (2xx, 4xx, 5xx).
   */
  respond(reply: Reply): void
  /**
   * Waits up to `ms` for the client to send anything this session has not read yet: true at
   * once if it already has, or as soon as it does; false when the time is up (earlytalker).
   * Nothing is read: the bytes stay for the session. Other sessions go on meanwhile.
   */
  clientSpoke(ms: number): Promise<boolean>
  /**
   * The plugin has judged a client that talked before the greeting (tolerated it, or will
   * refuse it later): the core's enforce_sync does not refuse the connection for it.
   */
  excuseEarlyTalk(): void
}

export interface TxnContext extends HookContext {
  readonly transaction: Transaction
}
