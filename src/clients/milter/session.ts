/**
 * The MTA side of one milter connection (Sendmail 8 milter protocol, versions 2 to 6): connect
 * and negotiate, then report each SMTP event with its macros and read the filter's decision.
 *
 * What the filter negotiated is honoured: events it does not want are not sent (their macros
 * are, as Postfix does), events it will not answer are not waited for, a skip ends the body,
 * and its symbol lists replace the configured macro names. What it did not negotiate is an
 * error: a modification without its action bit, a modification outside end of message, a reply
 * that does not parse. Every wait has a deadline (command or content timeout; any packet, such
 * as SMFIR_PROGRESS, starts a new one). After any error the connection is gone, since later
 * replies could no longer be matched to our commands; the caller applies its failure policy.
 */
import type { Socket } from 'node:net'
import { type ConnectOptions, type ConnectTarget, describeTarget, connect as netConnect } from '../../net/index.ts'
import {
  decodeReply,
  encodePacket,
  type FilterReply,
  type ModificationReply,
  type Part,
  packetHeader,
} from './codec.ts'
import {
  allActions,
  BODY_CHUNK,
  Command,
  type CommandLetter,
  MacroStage,
  type MacroStageName,
  offeredProtocol,
  Protocol,
  type ProtocolVersion,
  undefinedEvents,
} from './constants.ts'
import { MilterError } from './errors.ts'
import { actionFor, type EventSpec, events, stageLetters, stageNames } from './events.ts'
import { aborted, PacketReader } from './packet-reader.ts'

export interface MilterSessionOptions {
  readonly target: ConnectTarget
  /** For errors and logs: the operator's name of this milter. */
  readonly name: string
  readonly connectTimeoutMs: number
  /** Each SMTP event's reply (and the negotiation). */
  readonly commandTimeoutMs: number
  /** Each packet of the message content and its replies. */
  readonly contentTimeoutMs: number
  /** The longest packet the filter may send (data and letter). */
  readonly maxPacket: number
  /** The protocol version we speak (default 6). */
  readonly version?: ProtocolVersion
  /** Macro names to send per stage, unless the filter asks for others at negotiation. */
  readonly macroNames?: Partial<Record<MacroStageName | 'unknown', readonly string[]>>
  /** `api.net.connect`, so tests and operators see the connection. */
  readonly connect?: (target: ConnectTarget, opts: ConnectOptions) => Promise<Socket>
  readonly signal?: AbortSignal | undefined
}

export interface Negotiated {
  readonly version: number
  /** Actions the filter may request (SMFIF_*). */
  readonly actions: number
  /** Protocol bits in force: what the filter asked for, within what we offered (SMFIP_*). */
  readonly protocol: number
}

/** A filter's decision on one event. */
export type Decision =
  /** Go on; also an event not sent (the filter does not want it) or not answered (no-reply bits). */
  | { readonly kind: 'continue' }
  /** SMFIR_SKIP after a body chunk: send no more body. */
  | { readonly kind: 'skip' }
  | { readonly kind: 'accept' }
  | { readonly kind: 'reject' }
  | { readonly kind: 'tempfail' }
  | { readonly kind: 'discard' }
  /** SMFIR_SHUTDOWN or SMFIR_CONN_FAIL: 421 and close. */
  | { readonly kind: 'shutdown' }
  /** SMFIR_REPLYCODE: the reply as the filter wrote it (checked by the caller). */
  | { readonly kind: 'replyCode'; readonly text: string }

/** Receives end-of-message modifications in order; a throw ends the connection. */
export interface ModificationSink {
  modification(m: Exclude<ModificationReply, { kind: 'replaceBody' }>): void
  /** One chunk of a replaced body; the next packet is read when the promise settles. */
  replaceBody(chunk: Buffer): Promise<void>
}

export type MacroLookup = (name: string) => string | undefined

export class MilterSession {
  readonly name: string
  readonly negotiated: Negotiated
  readonly #socket: Socket
  readonly #reader: PacketReader
  readonly #opts: MilterSessionOptions
  readonly #macroNames: Map<MacroStageName | 'unknown', readonly string[]>
  /** Events this version does not define: never sent, not even their macros. */
  readonly #undefinedEvents: number
  /** After SMFIR_SKIP: events with this letter are not sent until another event comes. */
  #skipping: CommandLetter | undefined
  #busy = false
  #closed = false

  private constructor(
    socket: Socket,
    reader: PacketReader,
    opts: MilterSessionOptions,
    negotiated: Negotiated,
    lists: ReadonlyMap<number, string>,
  ) {
    this.name = opts.name
    this.#socket = socket
    this.#reader = reader
    this.#opts = opts
    this.negotiated = negotiated
    this.#undefinedEvents = undefinedEvents(negotiated.version)
    this.#macroNames = new Map(Object.entries(opts.macroNames ?? {}) as [MacroStageName, readonly string[]][])
    for (const [stage, names] of lists) {
      const name = stageNames.find((s) => MacroStage[s] === stage)
      if (name !== undefined)
        this.#macroNames.set(
          name,
          names.split(/[\s,]+/).filter((n) => n !== ''),
        )
    }
  }

  /** Connects and negotiates; rejects with a MilterError. */
  static async open(opts: MilterSessionOptions): Promise<MilterSession> {
    const where = `milter ${opts.name} (${describeTarget(opts.target)})`
    let socket: Socket
    try {
      socket = await (opts.connect ?? netConnect)(opts.target, {
        timeoutMs: opts.connectTimeoutMs,
        signal: opts.signal,
      })
    } catch (e) {
      if (opts.signal?.aborted) throw aborted(opts.signal, where)
      throw new MilterError('connect', `connect to ${where}: ${(e as Error).message}`, { cause: e })
    }
    socket.setNoDelay(true)
    const reader = new PacketReader(socket, { maxPacket: opts.maxPacket, peer: where })
    try {
      const version = opts.version ?? 6
      socket.write(
        encodePacket(Command.optionNegotiation, [
          { u32: version },
          { u32: allActions },
          { u32: offeredProtocol[version] },
        ]),
      )
      const packet = await reader.next({
        timeoutMs: opts.commandTimeoutMs,
        signal: opts.signal,
        waitingFor: 'negotiation reply',
      })
      if (packet.letter !== Command.optionNegotiation)
        throw new MilterError('negotiation', `${where} answered the negotiation with "${packet.letter}"`)
      const reply = decodeReply(packet.letter, packet.data)
      if (reply.kind !== 'negotiate') throw new MilterError('negotiation', `${where}: no negotiation reply`)
      if (reply.version < 2 || reply.version > version)
        throw new MilterError('negotiation', `${where} speaks protocol version ${reply.version}; we speak ${version}`)
      const unknown = reply.actions & ~allActions
      if (unknown !== 0)
        throw new MilterError('negotiation', `${where} asks for actions 0x${unknown.toString(16)} that we do not offer`)
      const negotiated = {
        version: reply.version,
        actions: reply.actions,
        protocol: reply.protocol & offeredProtocol[version],
      }
      return new MilterSession(socket, reader, opts, negotiated, reply.symbolLists)
    } catch (e) {
      const err = asMilterError(e, where)
      reader.fail(err)
      throw err
    }
  }

  /** False once the connection failed or was closed. */
  get usable(): boolean {
    return !this.#closed && this.#reader.failure === undefined
  }

  /** The macro names sent at a stage (configured, or the filter's own list). */
  macroNames(stage: MacroStageName | 'unknown'): readonly string[] {
    return this.#macroNames.get(stage) ?? []
  }

  /** SMFIC_CONNECT: the client's name, family (`4`, `6`, `L` Unix, `U` unknown), port and address. */
  connect(
    host: string,
    family: '4' | '6' | 'L' | 'U',
    port: number,
    address: string,
    macros: MacroLookup,
    signal?: AbortSignal,
  ): Promise<Decision> {
    const parts: Part[] = [{ string: host }, { octet: family }]
    if (family !== 'U') parts.push({ u16: port }, { string: address })
    return this.#event(events.connect, parts, { macros, signal })
  }

  helo(name: string, macros: MacroLookup, signal?: AbortSignal): Promise<Decision> {
    return this.#event(events.helo, [{ string: name }], { macros, signal })
  }

  /** `args`: `<sender>` then ESMTP parameters, one per string. */
  mail(args: readonly string[], macros: MacroLookup, signal?: AbortSignal): Promise<Decision> {
    return this.#event(events.mail, strings(args), { macros, signal })
  }

  rcpt(args: readonly string[], macros: MacroLookup, signal?: AbortSignal): Promise<Decision> {
    return this.#event(events.rcpt, strings(args), { macros, signal })
  }

  data(macros: MacroLookup, signal?: AbortSignal): Promise<Decision> {
    return this.#event(events.data, [], { macros, signal })
  }

  /** An SMTP command we do not know, as the client sent it. */
  unknown(line: string, macros: MacroLookup, signal?: AbortSignal): Promise<Decision> {
    return this.#event(events.unknown, [{ string: line }], { macros, signal })
  }

  /**
   * One header field: its name and its value as sent (Sendmail's form: the one space after the
   * colon removed unless the filter asked for leading spaces, folds as LF). The end-of-header
   * macros go with the first field (`macros`), or with endOfHeaders() when there is none.
   */
  header(name: string, value: Buffer, macros: MacroLookup | undefined, signal?: AbortSignal): Promise<Decision> {
    return this.#event(events.header, [{ string: name }, { string: value }], { macros, signal })
  }

  endOfHeaders(macros: MacroLookup | undefined, signal?: AbortSignal): Promise<Decision> {
    return this.#event(events.endOfHeaders, [], { macros, signal })
  }

  /** Whether the filter wants the body at all (SMFIP_NOBODY), so the caller need not read it. */
  get wantsBody(): boolean {
    return (this.negotiated.protocol & Protocol.noBody) === 0 && this.#skipping !== Command.body
  }

  /** Body bytes, in chunks of at most 65,535 octets, each written as the filter reads. */
  async body(bytes: Buffer, signal?: AbortSignal): Promise<Decision> {
    for (let at = 0; at < bytes.length; at += BODY_CHUNK) {
      const decision = await this.#event(events.body, [{ raw: bytes.subarray(at, at + BODY_CHUNK) }], { signal })
      if (decision.kind !== 'continue') return decision
    }
    return CONTINUE
  }

  /** SMFIC_BODYEOB: modifications go to `sink` in order, then the decision comes back. */
  endOfMessage(macros: MacroLookup, sink: ModificationSink, signal?: AbortSignal): Promise<Decision> {
    return this.#event(events.endOfMessage, [], { macros, signal, sink })
  }

  /** SMFIC_ABORT: the message ends without end of message (RSET, a refusal, a new MAIL). */
  abort(): void {
    this.#skipping = undefined
    if (this.usable) this.#socket.write(encodePacket(Command.abort))
  }

  /** SMFIC_QUIT, then the connection ends; never waits long. */
  async quit(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#reader.failure !== undefined) return
    const socket = this.#socket
    const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.end(encodePacket(Command.quit))
    const timer = setTimeout(() => socket.destroy(), 1_000)
    await gone
    clearTimeout(timer)
  }

  destroy(): void {
    this.#closed = true
    this.#socket.destroy()
  }

  async #event(
    spec: EventSpec | (typeof events)[keyof typeof events],
    parts: readonly Part[],
    call: { macros?: MacroLookup | undefined; signal?: AbortSignal | undefined; sink?: ModificationSink },
  ): Promise<Decision> {
    if (this.#busy) throw new Error(`milter ${this.name}: an event was sent while another waits for its reply`)
    if (!this.usable) throw this.#reader.failure ?? new MilterError('closed', `milter ${this.name} is closed`)
    if ((spec.notWanted & this.#undefinedEvents) !== 0) return CONTINUE
    if (this.#skipping !== undefined) {
      if (this.#skipping === spec.letter) return spec.letter === Command.body ? SKIP : CONTINUE
      this.#skipping = undefined
    }
    this.#busy = true
    try {
      const content = 'content' in spec && spec.content
      const timeoutMs = content ? this.#opts.contentTimeoutMs : this.#opts.commandTimeoutMs
      const stage = 'stage' in spec ? spec.stage : undefined
      const packets: Buffer[] = []
      if (call.macros !== undefined && stage !== undefined) {
        const macroPacket = this.#macroPacket(stage, call.macros)
        if (macroPacket !== undefined) packets.push(macroPacket)
      }
      const wanted = (this.negotiated.protocol & spec.notWanted) === 0
      if (wanted) {
        const raw = parts.length === 1 && 'raw' in (parts[0] as Part) ? (parts[0] as { raw: Buffer }).raw : undefined
        if (raw === undefined) packets.push(encodePacket(spec.letter, parts))
        else packets.push(packetHeader(spec.letter, raw.length), raw)
      }
      await this.#write(packets, timeoutMs, spec.letter, call.signal)
      if (!wanted || (this.negotiated.protocol & spec.noReply) !== 0) return CONTINUE
      return await this.#replyTo(spec.letter, timeoutMs, call)
    } catch (e) {
      const err = asMilterError(e, `milter ${this.name}`)
      this.#reader.fail(err)
      throw err
    } finally {
      this.#busy = false
    }
  }

  #macroPacket(stage: MacroStageName | 'unknown', lookup: MacroLookup): Buffer | undefined {
    const parts: Part[] = []
    for (const name of this.macroNames(stage)) {
      const value = lookup(name)
      if (value !== undefined) parts.push({ string: name }, { string: value.replaceAll('\0', '') })
    }
    if (parts.length === 0) return undefined
    const letter = stage === 'unknown' ? Command.unknown : stageLetters[stage]
    return encodePacket(Command.macro, [{ octet: letter }, ...parts])
  }

  /** Writes and waits until the socket took it all: a filter that stops reading stops us. */
  #write(
    packets: readonly Buffer[],
    timeoutMs: number,
    letter: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (packets.length === 0) return Promise.resolve()
    const socket = this.#socket
    let flushed = true
    socket.cork()
    for (const p of packets) flushed = socket.write(p)
    socket.uncork()
    if (flushed) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const finish = (err?: MilterError) => {
        clearTimeout(timer)
        socket.off('drain', onDrain)
        socket.off('close', onClose)
        signal?.removeEventListener('abort', onAbort)
        if (err === undefined) resolve()
        else reject(err)
      }
      const onDrain = () => finish()
      const onClose = () => finish(this.#reader.failure ?? new MilterError('closed', `milter ${this.name} closed`))
      const onAbort = () => finish(aborted(signal, `milter ${this.name}`))
      const timer = setTimeout(
        () => finish(new MilterError('timeout', `milter ${this.name} read nothing of "${letter}" for ${timeoutMs} ms`)),
        timeoutMs,
      )
      socket.once('drain', onDrain)
      socket.once('close', onClose)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  async #replyTo(
    letter: CommandLetter,
    timeoutMs: number,
    call: { signal?: AbortSignal | undefined; sink?: ModificationSink },
  ): Promise<Decision> {
    const { sink } = call
    const endOfMessage = letter === Command.endOfMessage
    let body: 'none' | 'replacing' | 'replaced' = 'none'
    for (;;) {
      const packet = await this.#reader.next({
        timeoutMs,
        signal: call.signal,
        waitingFor: `reply to "${letter}"`,
      })
      const needs = actionFor[packet.letter]
      if (needs !== undefined) {
        if (!endOfMessage || sink === undefined)
          throw new MilterError(
            'unexpected',
            `milter ${this.name} sent a modification ("${packet.letter}") before end of message`,
          )
        if ((this.negotiated.actions & needs) === 0)
          throw new MilterError(
            'unnegotiated',
            `milter ${this.name} sent "${packet.letter}" without negotiating action 0x${needs.toString(16)}`,
          )
      }
      const reply: FilterReply = decodeReply(packet.letter, packet.data)
      if (reply.kind === 'replaceBody') {
        if (body === 'replaced')
          throw new MilterError(
            'unexpected',
            `milter ${this.name} replaced the body in two parts with other changes between`,
          )
        body = 'replacing'
        await (sink as ModificationSink).replaceBody(reply.chunk)
        continue
      }
      if (body === 'replacing') body = 'replaced'
      switch (reply.kind) {
        case 'progress':
          continue
        case 'addHeader':
        case 'insertHeader':
        case 'changeHeader':
        case 'addRecipient':
        case 'removeRecipient':
        case 'changeSender':
        case 'quarantine':
          ;(sink as ModificationSink).modification(reply)
          continue
        case 'continue':
        case 'accept':
        case 'reject':
        case 'tempfail':
        case 'discard':
          return { kind: reply.kind }
        case 'skip':
          this.#skipping = letter
          return letter === Command.body ? SKIP : CONTINUE
        case 'shutdown':
        case 'connectionFailure':
          return SHUTDOWN
        case 'replyCode':
          return { kind: 'replyCode', text: reply.text }
        case 'negotiate':
          throw new MilterError('unexpected', `milter ${this.name} sent a negotiation reply to "${letter}"`)
      }
    }
  }
}

const CONTINUE: Decision = Object.freeze({ kind: 'continue' })
const SKIP: Decision = Object.freeze({ kind: 'skip' })
const SHUTDOWN: Decision = Object.freeze({ kind: 'shutdown' })

const strings = (args: readonly string[]): Part[] => args.map((a) => ({ string: a }))

function asMilterError(e: unknown, where: string): MilterError {
  if (e instanceof MilterError) return e
  return new MilterError('closed', `${where}: ${(e as Error).message ?? String(e)}`, { cause: e })
}
