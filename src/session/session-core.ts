/**
 * What a command handler may do to its session. Commands live one per file in commands/
 * and see only this interface, not the socket.
 */
import type { Connection, Helo, ListenerInfo, Peer, ServerInfo, TlsInfo } from '../host/context.ts'
import { Notes } from '../host/keys.ts'
import type { Logger } from '../host/logger.ts'
import { Results } from '../host/results.ts'
import type { HookRunner, SessionView } from '../host/runner.ts'
import type { TlsSettings } from '../host/services.ts'
import type { SmtpCodec } from '../protocol/codec.ts'
import type { Reply } from '../protocol/reply.ts'
import type { AuthShared } from './auth/shared.ts'
import type { CommandInProgress } from './log-lines.ts'
import type { Phase } from './phase.ts'
import type { SessionMetrics } from './session-metrics.ts'
import type { SessionSettings } from './settings.ts'

export interface ConnectionState extends Connection {
  /** Changed only by XCLIENT/XFORWARD from a trusted forwarder (commands/xclient.ts). */
  remote: Peer
  local: Peer
  tls: TlsInfo | undefined
  helo: Helo | undefined
  auth: { user: string; mechanism: string } | undefined
  messageCount: number
}

export interface SessionCore extends SessionView {
  readonly connection: ConnectionState
  readonly settings: SessionSettings
  readonly runner: HookRunner
  readonly server: ServerInfo
  readonly listener: ListenerInfo
  readonly log: Logger
  readonly codec: SmtpCodec
  readonly tls: TlsSettings | undefined
  /** Shared by the AUTH exchanges of all sessions. */
  readonly auth: AuthShared
  /** Where the session's events are counted; undefined in unit tests. */
  readonly metrics: SessionMetrics | undefined
  phase: Phase
  /** Counters the limits apply to, and `refused` (4xx/5xx final replies) for the summary line. */
  readonly counters: {
    errors: number
    unknown: number
    junk: number
    authFailures: number
    commands: number
    refused: number
  }
  /** The command being answered, for its log line: set by dispatch, cleared by its final reply. */
  command: CommandInProgress | undefined
  /** Milliseconds spent in each plugin's hooks, in the order they first ran: the summary line. */
  readonly hookTime: ReadonlyMap<string, number>
  /** Queue a reply; replies are written once per pipelined group. */
  send(reply: Reply): void
  /** Queue a reply and write everything now (354, 334, 220 before TLS). */
  sendNow(reply: Reply): Promise<void>
  /** Counts an error; delays or closes the session past the soft and hard limits. */
  error(reply: Reply): Promise<void>
  /** Sends the reply (if any) and closes the session. */
  close(reply?: Reply): Promise<void>
  /** Ends the transaction (RSET, new MAIL, after queueing), running reset_transaction. */
  resetTransaction(): Promise<void>
  /** Reads one more line (AUTH responses): the reply for a malformed line, undefined if the session ended. */
  readLine(maxLength: number): Promise<string | Reply | undefined>
  /** Ends a pending readLine (it resolves undefined) without ending the session. */
  cancelReadLine(): void
  /** Keying material exported from the TLS 1.3 connection (RFC 8446 §7.5); undefined otherwise. */
  tlsExporter(label: string, length: number): Buffer | undefined
  /** Switches the connection to TLS (STARTTLS); resolves false if the handshake failed. */
  startTls(): Promise<boolean>
  /** Whether the client was offered PIPELINING (EHLO) and so may pipeline. */
  readonly offeredPipelining: boolean
  /** Consumes a BDAT chunk outside any transaction, then answers with the reply. */
  discardChunk(size: number, reply: Reply): void
}

/** A new connection's state; the listener and peer come from the server. */
export function newConnectionState(opts: {
  readonly id: string
  readonly remote: Peer
  readonly local: Peer
  readonly listener: ListenerInfo
  readonly tlsInfo?: TlsInfo | undefined
  readonly relayClient?: boolean
}): ConnectionState {
  return {
    id: opts.id,
    remote: opts.remote,
    remoteHost: undefined,
    local: opts.local,
    listener: opts.listener,
    startedAt: new Date(),
    tls: opts.tlsInfo,
    helo: undefined,
    auth: undefined,
    relayClient: opts.relayClient ?? false,
    notes: new Notes(),
    results: new Results(),
    messageCount: 0,
  }
}
