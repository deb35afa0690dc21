/**
 * One SMTP session: reads bytes into the codec, dispatches commands from the table, writes
 * replies once per pipelined group (RFC 2920), enforces timeouts and error limits, and
 * upgrades to TLS. Command semantics live in commands/, message completion in deliver.ts.
 *
 * Security: framing is the codec's alone; plaintext buffered behind STARTTLS is dropped
 * (RFC 3207 §4, CVE-2011-0411); clients that talk out of turn are refused (Postfix 3.9).
 */
import type { Duplex } from 'node:stream'
import { TLSSocket } from 'node:tls'
import type { ListenerInfo, Peer, ServerInfo, Transaction } from '../host/context.ts'
import type { Logger } from '../host/logger.ts'
import type { HookRunner } from '../host/runner.ts'
import type { TlsSettings } from '../host/services.ts'
import { type CodecEvent, type ContentResult, SmtpCodec } from '../protocol/codec.ts'
import type { Reply } from '../protocol/reply.ts'
import { type AuthShared, localAuthShared } from './auth/shared.ts'
import { SessionClock, sleep } from './clock.ts'
import { contentEnded } from './deliver.ts'
import { decodeLine, dispatchCommand } from './dispatch.ts'
import { InputWatch } from './input-watch.ts'
import { connectionHooks } from './lifecycle.ts'
import { type CommandInProgress, logFinalReply, logLostMessage, unparsedCommand } from './log-lines.ts'
import type { Phase } from './phase.ts'
import { commandErrorReplies, Replies } from './replies.ts'
import { ReplyWriter } from './reply-writer.ts'
import { type ConnectionState, newConnectionState, type SessionCore } from './session-core.ts'
import { type SessionMetrics, tellVerdict } from './session-metrics.ts'
import type { SessionSettings } from './settings.ts'
import { serverHandshake, type TlsContextProvider } from './tls.ts'
import type { TxnState } from './transaction.ts'

export interface SessionOptions {
  readonly settings: SessionSettings
  readonly runner: HookRunner
  readonly server: ServerInfo
  readonly log: Logger
  readonly listener: ListenerInfo
  readonly remote: Peer
  readonly local: Peer
  readonly tls: TlsSettings | undefined
  readonly tlsContexts: TlsContextProvider | undefined
  /** Shared by the AUTH exchanges of all sessions (default: a process-local one). */
  readonly auth?: AuthShared | undefined
  /** Set when the listener is implicit TLS and the handshake is already done. */
  readonly tlsInfo?: ConnectionState['tls']
  readonly relayClient?: boolean
  readonly id: string
  /** Where its replies, bytes, TLS, AUTH and queue hand-offs are counted (server/): none in unit tests. */
  readonly metrics?: SessionMetrics | undefined
}

export class Session implements SessionCore {
  readonly connection: ConnectionState
  readonly settings: SessionSettings
  readonly runner: HookRunner
  readonly server: ServerInfo
  readonly listener: ListenerInfo
  readonly log: Logger
  readonly codec: SmtpCodec
  readonly tls: TlsSettings | undefined
  readonly auth: AuthShared
  readonly metrics: SessionMetrics | undefined
  readonly counters = { errors: 0, unknown: 0, junk: 0, authFailures: 0, commands: 0, refused: 0 }
  phase: Phase = { name: 'connected' }
  command: CommandInProgress | undefined
  /** The plugin whose refusal decided the command being answered. */
  #refusedBy: string | undefined

  #abort = new AbortController()
  readonly #tlsContexts: TlsContextProvider | undefined
  #stream: Duplex
  readonly #writer: ReplyWriter
  #processing = false
  #closed = false
  #lineWaiter: ((line: string | Reply | undefined) => void) | undefined
  #sessionTimer: NodeJS.Timeout | undefined
  readonly #clock: SessionClock
  #talkedEarly = false
  /** A plugin (earlytalker) judged the early talk itself: enforce_sync leaves it alone. */
  #earlyTalkExcused = false
  readonly #input = new InputWatch()
  #closing = false
  #orphanChunkReply: Reply | undefined
  readonly #finished = Promise.withResolvers<void>()

  constructor(stream: Duplex, opts: SessionOptions) {
    this.#stream = stream
    this.settings = opts.settings
    this.runner = opts.runner
    this.server = opts.server
    this.listener = opts.listener
    this.tls = opts.tls
    this.auth = opts.auth ?? localAuthShared()
    this.metrics = opts.metrics
    this.#tlsContexts = opts.tlsContexts
    this.log = opts.log.child({ connection: opts.id })
    this.codec = new SmtpCodec({ maxCommandLine: opts.settings.limits.commandLine })
    this.#writer = new ReplyWriter(stream, opts.settings.timeouts.commandMs, () =>
      this.log.notice('client does not read replies; closing'),
    )
    this.#clock = new SessionClock(opts.settings.timeouts, (why) => {
      void this.close(why === 'slow' ? Replies.tooSlow : Replies.timeout)
    })
    this.connection = newConnectionState(opts)
  }

  get signal(): AbortSignal {
    return this.#abort.signal
  }

  /** The open transaction as plugins see it. */
  get transaction(): Transaction | undefined {
    return this.#txn?.view
  }

  get #txn(): TxnState | undefined {
    return 'txn' in this.phase ? this.phase.txn : undefined
  }

  get offeredPipelining(): boolean {
    return this.connection.helo?.verb === 'EHLO'
  }

  /** Runs the session to its end. */
  async run(): Promise<void> {
    this.#attach(this.#stream)
    this.#sessionTimer = setTimeout(() => void this.close(Replies.sessionTimeout), this.settings.timeouts.sessionMs)
    this.#sessionTimer.unref?.()
    // Listeners accept paused (pauseOnConnect): read from the start, so that a client talking
    // before the greeting is seen (greeted()); #onData pauses again at its first bytes.
    this.#stream.resume()
    // The connect hooks count as processing: a client leaving meanwhile gets its teardown (and
    // the disconnect hooks) after them, never in the middle.
    this.#processing = true
    try {
      await connectionHooks.open(this)
    } catch (e) {
      this.log.error(`session failed: ${(e as Error).stack ?? String(e)}`)
      await this.close(Replies.internalError)
    } finally {
      this.#processing = false
    }
    if (this.#closed) await this.#teardown()
    else this.#kick()
    return this.#finished.promise
  }

  /** Shuts the session down from outside (server drain): 421 and close. */
  shutdown(): Promise<void> {
    return this.close(Replies.shuttingDown)
  }

  #attach(stream: Duplex): void {
    stream.on('data', this.#onData).on('end', this.#onEnd).on('error', this.#onError).on('close', this.#onClose)
  }

  #detach(stream: Duplex): void {
    stream.off('data', this.#onData).off('end', this.#onEnd).off('error', this.#onError).off('close', this.#onClose)
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#closed) return
    if (this.phase.name === 'connected') this.#talkedEarly = true
    this.metrics?.received(chunk.length)
    this.codec.push(chunk)
    this.#input.notify()
    if (this.codec.inContent()) this.#clock.content(chunk.length)
    if (this.#lineWaiter) {
      this.#pumpLine()
      return
    }
    if (this.#processing || this.phase.name === 'connected') this.#stream.pause()
    else this.#kick()
  }

  readonly #onEnd = (): void => {
    this.#releaseLineWaiter()
    // An end of input counts as input, as select() reports it readable: a wait ends at once.
    this.#input.notify()
    if (!this.#processing) void this.#teardown()
  }

  /**
   * The connection is gone (reset, or closed both ways): nothing more can be read or written, so
   * a hook still running is aborted and nothing after it is processed. A FIN alone ('end') is not
   * this: a client may half-close behind a pipelined QUIT and still read the replies.
   */
  readonly #onClose = (): void => {
    if (this.#processing && !this.#closed) {
      this.#closed = true
      this.#clock.stop()
      this.#abort.abort(new Error('connection lost'))
    }
    this.#onEnd()
  }

  readonly #onError = (err: Error): void => {
    this.log.info(`connection error: ${err.message}`)
    this.#onEnd()
  }

  /** True once the greeting went out; set by lifecycle.open. */
  greeted(): void {
    this.phase = { name: 'greeted' }
    if (this.#talkedEarly && this.settings.policies.enforceSync && !this.#earlyTalkExcused) {
      this.log.notice('client talked before the greeting')
      void this.close(Replies.syncError)
    }
  }

  #kick(): void {
    if (this.#processing || this.#closed) return
    this.#processing = true
    void this.#process().finally(() => {
      this.#processing = false
      if (this.#closed) return void this.#teardown()
      if (this.#stream.readableEnded || this.#stream.destroyed) return void this.#teardown()
      this.#clock.wait(this.codec.inContent(), this.codec.buffered() > 0)
      this.#stream.resume()
    })
  }

  async #process(): Promise<void> {
    try {
      for (;;) {
        if (this.#closed) return
        let ev = this.codec.next()
        if (ev === undefined) {
          await this.#flush()
          // Bytes that arrived while the replies drained were taken from the socket already: no
          // 'data' event will bring them again.
          if (this.#closed) return
          ev = this.codec.next()
          if (ev === undefined) return
        }
        this.#clock.stop()
        this.#clock.commandDone()
        const pending = this.#handle(ev)
        if (pending !== undefined) await pending
      }
    } catch (e) {
      this.log.error(`session failed: ${(e as Error).stack ?? String(e)}`)
      await this.close(Replies.internalError)
    }
  }

  #handle(ev: CodecEvent): Promise<void> | undefined {
    switch (ev.type) {
      case 'command':
        this.#beginCommand()
        return dispatchCommand(this, ev.line)
      case 'command-error':
        this.#beginCommand()
        // A client ending its lines with a bare LF would wait for replies to lines that are never
        // commands: answer and close, as Postfix does with smtpd_forbid_bare_newline=reject.
        if (ev.error === 'bare-lf') return this.close(Replies.bareLf)
        return this.error(commandErrorReplies[ev.error])
      case 'data': {
        const txn = this.#txn
        const spool = txn?.spool
        if (spool !== undefined && txn?.pendingRefusal === undefined && !spool.write(ev.chunk)) return spool.drained()
        return undefined
      }
      case 'data-end':
        return this.#contentEnd(ev.result)
    }
  }

  async #contentEnd(result: ContentResult): Promise<void> {
    this.#clock.contentDone()
    const orphan = this.#orphanChunkReply
    if (orphan !== undefined) {
      this.#orphanChunkReply = undefined
      return this.error(orphan)
    }
    const txn = this.#txn
    if (txn !== undefined) await contentEnded(this, txn, result)
  }

  // --- replies --------------------------------------------------------------------------

  #beginCommand(): void {
    this.command = unparsedCommand
    this.#refusedBy = undefined
  }

  clientSpoke(ms: number, signal: AbortSignal): Promise<boolean> {
    return this.#input.wait(ms, signal, () => this.codec.buffered() > 0)
  }

  excuseEarlyTalk(): void {
    this.#earlyTalkExcused = true
  }

  readonly hookTime = new Map<string, number>()

  recordHookTime(plugin: string, ms: number): void {
    this.hookTime.set(plugin, (this.hookTime.get(plugin) ?? 0) + ms)
  }

  noteRefusal(plugin: string): void {
    this.#refusedBy = plugin
  }

  send(r: Reply): void {
    // A 3xx (354, 334) is not final: the command is answered by the reply after it.
    const command = this.command
    this.metrics?.reply(command?.verb, r.code)
    if (command !== undefined && (r.code < 300 || r.code >= 400)) {
      if (r.code >= 400) this.counters.refused++
      logFinalReply(this, command, r, this.#refusedBy)
      tellVerdict(this, command, r, this.#refusedBy)
      this.command = undefined
      this.#refusedBy = undefined
    }
    if (!this.#closed) this.#writer.queue(r)
  }

  async sendNow(r: Reply): Promise<void> {
    this.send(r)
    await this.#flush()
  }

  respond(r: Reply): void {
    this.send(r)
  }

  async error(r: Reply): Promise<void> {
    this.counters.errors++
    if (this.counters.errors >= this.settings.limits.hardErrors) return this.close(Replies.tooManyErrors)
    this.send(r)
    if (this.counters.errors > this.settings.limits.softErrors && this.settings.timeouts.errorDelayMs > 0) {
      await this.#flush()
      await sleep(this.settings.timeouts.errorDelayMs, this.signal)
    }
  }

  #flush(): Promise<void> {
    return this.#closed ? Promise.resolve() : this.#writer.flush()
  }

  // --- session-level operations -------------------------------------------------------

  readLine(maxLength: number): Promise<string | Reply | undefined> {
    if (this.#closed) return Promise.resolve(undefined)
    this.codec.setCommandLimit(maxLength)
    return new Promise((resolve) => {
      this.#lineWaiter = (line) => {
        this.codec.setCommandLimit(this.settings.limits.commandLine)
        resolve(line)
      }
      this.#pumpLine()
    })
  }

  /** Hands the next line to a pending readLine, or waits for more bytes. */
  #pumpLine(): void {
    const waiter = this.#lineWaiter
    if (waiter === undefined) return
    const ev = this.codec.next()
    if (ev === undefined) {
      this.#clock.wait(this.codec.inContent(), this.codec.buffered() > 0)
      this.#stream.resume()
      return
    }
    this.#clock.stop()
    this.#clock.commandDone()
    this.#stream.pause()
    this.#lineWaiter = undefined
    if (ev.type === 'command-error' && ev.error === 'bare-lf') {
      // As for a command line; the exchange ends only once the session has.
      void this.close(Replies.bareLf).then(() => waiter(undefined))
      return
    }
    if (ev.type === 'command') waiter(decodeLine(ev.line) ?? Replies.badUtf8)
    // Command mode yields nothing else but command errors.
    else waiter(ev.type === 'command-error' ? commandErrorReplies[ev.error] : Replies.internalError)
  }

  cancelReadLine(): void {
    this.#releaseLineWaiter()
  }

  tlsExporter(label: string, length: number): Buffer | undefined {
    const stream = this.#stream
    // RFC 9266 §3: tls-exporter over TLS 1.2 is safe only with extended master secret, which
    // Node does not report; TLS 1.3 always has it.
    if (!(stream instanceof TLSSocket) || stream.getProtocol() !== 'TLSv1.3') return undefined
    // TLS 1.3 makes no context and an empty one the same (RFC 8446 §7.5).
    return stream.exportKeyingMaterial(length, label, Buffer.alloc(0))
  }

  #releaseLineWaiter(): void {
    const waiter = this.#lineWaiter
    this.#lineWaiter = undefined
    waiter?.(undefined)
  }

  async startTls(): Promise<boolean> {
    const contexts = this.#tlsContexts
    if (contexts === undefined) return false
    await this.#flush()
    const plain = this.#stream
    this.#detach(plain)
    plain.pause()
    // RFC 3207 §4: anything the client sent before the handshake is discarded.
    this.codec.discardBuffered()
    const result = await serverHandshake(plain, contexts, this.settings.timeouts.tlsHandshakeMs)
    if ('error' in result) {
      this.log.info(`TLS handshake failed: ${result.error}`)
      this.metrics?.tlsFailed()
      this.#closed = true
      this.#onEnd()
      return false
    }
    this.#stream = result.socket
    this.#writer.stream = result.socket
    this.#attach(result.socket)
    this.connection.tls = result.info
    this.metrics?.tlsEstablished(result.info)
    return true
  }

  discardChunk(size: number, r: Reply): void {
    this.#orphanChunkReply = r
    this.codec.beginMessage({ maxMessageSize: 0, maxLineLength: 0, bareLineEndings: 'reject', binary: true })
    this.codec.startBdat(size)
  }

  async resetTransaction(): Promise<void> {
    const txn = this.#txn
    if (txn === undefined) return
    const helo = 'helo' in this.phase ? this.phase.helo : undefined
    txn.edits.close()
    await this.runner.all('resetTransaction', this)
    // The message was answered already: a temp file that cannot be removed (a spool turned
    // read-only) is the operator's to clear, never a second reply (issue 18 F8).
    await txn
      .cleanup()
      .catch((e: unknown) => this.log.error(`spool cleanup failed, a temp file stays: ${(e as Error).message}`))
    if (helo !== undefined && !this.#closed) this.phase = { name: 'ready', helo }
  }

  async close(r?: Reply): Promise<void> {
    if (this.#closed || this.#closing) return
    // Set before the flush: a second close() during it must not send a second closing reply.
    this.#closing = true
    if (r !== undefined) this.send(r)
    await this.#flush()
    this.#closed = true
    this.#clock.stop()
    this.#releaseLineWaiter()
    const stream = this.#stream
    stream.end()
    // A peer that never reads its last reply must not hold the socket open.
    setTimeout(() => stream.destroy(), 2000).unref?.()
    if (!this.#processing) await this.#teardown()
  }

  #tornDown = false
  async #teardown(): Promise<void> {
    if (this.#tornDown) return
    this.#tornDown = true
    this.#closed = true
    // Left in the middle of a message, not closed by us (a timeout logs its own reply): say so.
    const txn = this.#txn
    if (txn !== undefined && this.phase.name === 'content' && txn.message === undefined && !this.#closing)
      logLostMessage(this, txn)
    this.#clock.dispose()
    if (this.#sessionTimer) clearTimeout(this.#sessionTimer)
    // The disconnect hooks get a live signal even when the connection's was aborted (#onClose).
    if (this.#abort.signal.aborted) this.#abort = new AbortController()
    try {
      await this.resetTransaction()
      await connectionHooks.close(this)
    } finally {
      this.#abort.abort(new Error('session closed'))
      this.phase = { name: 'closing' }
      // end(), not destroy(): replies still being written reach a client that half-closed after a
      // pipelined QUIT (Exim does), and TLS gets its close_notify. destroy() is the backstop.
      const stream = this.#stream
      if (!stream.destroyed) {
        stream.end()
        setTimeout(() => stream.destroy(), 2000).unref?.()
      }
      this.#finished.resolve()
    }
  }
}
