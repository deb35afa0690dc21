/**
 * SMTP input framing: the only place that splits received bytes into command lines and message content.
 *
 * Pure (no sockets, no timers) and lazy: next() parses in the current mode only, so pipelined bytes after
 * DATA or BDAT stay unparsed until the session switches mode, or not at all if it refused (RFC 2920 §3.1).
 * It does not interpret commands or enforce policy; it counts what policy needs (ContentResult).
 * RFC 5321 §2.3.8 (lines end at CRLF), §4.1.1.4 and §4.5.2 (end of data, dot-stuffing), §4.5.3.1.4
 * (512-octet command line); RFC 3030 (BDAT, BINARYMIME).
 * Security: SMTP smuggling (CVE-2023-51764 family): only CRLF "." CRLF ends DATA, and a bare CR or LF
 * never ends a line or starts one. Command lines are bounded, so no input can grow memory without limit.
 */

import { type ContentResult, ContentScanner, type MessageScanOptions } from './content-scanner.ts'

export type { BareLineEndingPolicy, ContentResult, MessageScanOptions } from './content-scanner.ts'

export type CommandError = 'too-long' | 'bare-lf' | 'bare-cr' | 'nul'

export type CodecEvent =
  | { readonly type: 'command'; readonly line: Buffer }
  | { readonly type: 'command-error'; readonly error: CommandError }
  | { readonly type: 'data'; readonly chunk: Buffer }
  | { readonly type: 'data-end'; readonly result: ContentResult }

const CR = 0x0d
const LF = 0x0a
const DOT = 0x2e
const NUL = 0x00

const commandError = (error: CommandError): CodecEvent => Object.freeze({ type: 'command-error', error })
const TOO_LONG = commandError('too-long')
const BARE_LF = commandError('bare-lf')
const BARE_CR = commandError('bare-cr')
const NUL_BYTE = commandError('nul')

type Mode = 'command' | 'data' | 'bdat'

/** `next()` steps return null when they made progress without an event to report. */
type Step = CodecEvent | undefined | null

/**
 * Incremental SMTP framer. Pushed buffers are kept by reference and `data` chunks are slices of them,
 * so callers must not reuse a buffer after pushing it.
 *
 * @example
 * const codec = new SmtpCodec()
 * socket.on('data', (b) => {
 *   codec.push(b)
 *   for (let ev = codec.next(); ev !== undefined; ev = codec.next()) handle(ev) // may call startData()
 * })
 */
export class SmtpCodec {
  // Unconsumed input: #chunks[#head] from #pos onward, then the later chunks.
  #chunks: Buffer[] = []
  #head = 0
  #pos = 0
  #buffered = 0
  #mode: Mode = 'command'

  // Command mode. #scanIdx/#scanRel let a partial line be searched for LF once, not once per push.
  #limit: number
  #discarding = false
  #discardPrevCr = false
  #scanIdx = -1
  #scanRel = 0

  // Content mode.
  #content = new ContentScanner()
  #remaining = 0 // BDAT bytes still to read
  #last = false

  constructor(opts?: { maxCommandLine?: number }) {
    this.#limit = opts?.maxCommandLine ?? 512
  }

  /** Appends received bytes; parses nothing yet. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
  }

  /** The next event in the current mode, or undefined when more bytes are needed. */
  next(): CodecEvent | undefined {
    for (;;) {
      const ev = this.#mode === 'command' ? this.#nextCommand() : this.#nextContent()
      if (ev !== null) return ev
    }
  }

  /** Longest command line including CRLF, e.g. 12 KiB while an AUTH response is expected. */
  setCommandLimit(n: number): void {
    this.#limit = n
  }

  /** Resets the per-message counters for a new transaction. */
  beginMessage(opts: MessageScanOptions): void {
    this.#content.begin(opts)
  }

  /** Switches to DATA mode at the current position (after the DATA command line). */
  startData(): void {
    this.#mode = 'data'
    this.#content.lineStart = true
    this.#discarding = false
  }

  /**
   * The next `size` bytes are one BDAT chunk. `last` (BDAT ... LAST) settles a CR that ends the chunk as
   * bare; otherwise it may still pair with an LF that starts the next chunk of the message.
   */
  startBdat(size: number, last = false): void {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`invalid BDAT size ${size}`)
    this.#mode = 'bdat'
    this.#remaining = size
    this.#last = last
    this.#content.lineStart = false
    this.#discarding = false
  }

  /** Bytes received but not yet consumed by next(). */
  buffered(): number {
    return this.#buffered
  }

  /** Drops everything buffered: nothing sent before the TLS handshake may count after it (RFC 3207, CVE-2011-0411). */
  discardBuffered(): void {
    this.#chunks = []
    this.#head = 0
    this.#pos = 0
    this.#buffered = 0
    this.#discarding = false
    this.#scanIdx = -1
  }

  /** True while in DATA or BDAT mode. */
  inContent(): boolean {
    return this.#mode !== 'command'
  }

  #nextCommand(): Step {
    if (this.#discarding) return this.#discardToCrlf()
    if (this.#buffered === 0) return undefined
    const lf = this.#findLf()
    if (lf < 0) {
      if (this.#buffered < this.#limit) return undefined
      // Drop what we have now, so memory stays bounded however long the line gets.
      this.#startDiscard(this.#buffered)
      return TOO_LONG
    }
    if (lf + 1 > this.#limit) {
      if (lf > 0 && this.#peek(lf - 1) === CR) this.#consume(lf + 1)
      // The bare LF that ends it is left for #discardToCrlf to report.
      else this.#startDiscard(lf)
      return TOO_LONG
    }
    if (lf === 0 || this.#peek(lf - 1) !== CR) {
      // A bare LF is never a line break: report it at once, then ignore everything up to the real
      // CRLF, so `EHLO a<LF>MAIL FROM:...<CR><LF>` can never run the second half as a command.
      this.#startDiscard(lf + 1)
      return BARE_LF
    }
    const line = this.#take(lf + 1)
    const body = line.subarray(0, lf - 1)
    if (body.indexOf(CR) >= 0) return BARE_CR
    if (body.indexOf(NUL) >= 0) return NUL_BYTE
    return { type: 'command', line: body }
  }

  /** Consumes n bytes and discards what follows up to and including the next CRLF. */
  #startDiscard(n: number): void {
    this.#discardPrevCr = n > 0 && this.#peek(n - 1) === CR
    this.#consume(n)
    this.#discarding = true
  }

  /**
   * Discards through the next CRLF: null once it arrived, undefined while it has not (all buffered
   * bytes dropped). Each bare LF on the way is reported, so a client that ends its lines with LF
   * learns about every one of them (the session closes at the first).
   */
  #discardToCrlf(): Step {
    if (this.#buffered === 0) return undefined
    if (this.#discardPrevCr && this.#peek(0) === LF) {
      this.#consume(1)
      this.#discarding = false
      return null
    }
    const lf = this.#findLf()
    if (lf < 0) {
      this.#discardPrevCr = this.#peek(this.#buffered - 1) === CR
      this.#consume(this.#buffered)
      return undefined
    }
    const crlf = lf > 0 && this.#peek(lf - 1) === CR
    this.#discardPrevCr = false
    this.#consume(lf + 1)
    if (!crlf) return BARE_LF
    this.#discarding = false
    return null
  }

  #nextContent(): Step {
    const content = this.#content
    if (content.pendingOut !== undefined) {
      const out = content.pendingOut
      content.pendingOut = undefined
      return this.#data(content.emit(out))
    }
    if (this.#mode === 'bdat' && this.#remaining === 0) {
      content.endChunk(this.#last)
      if (content.pendingOut !== undefined) return null
      this.#mode = 'command'
      return { type: 'data-end', result: content.result() }
    }
    if (this.#buffered === 0) return undefined
    const data = this.#mode === 'data'
    if (data && content.lineStart) return this.#dataLineStart()
    const b = this.#chunks[this.#head]!
    const start = this.#pos
    const end = data ? b.length : Math.min(b.length, start + this.#remaining)
    let to = end
    let emitTo = end
    if (data || !content.opts.binary) {
      to = content.scan(b, start, end, data)
      emitTo = content.emitTo
    }
    if (!data) this.#remaining -= to - start
    this.#consume(to - start)
    return this.#data(content.emit(b.subarray(start, emitTo)))
  }

  #data(chunk: Buffer | undefined): Step {
    return chunk === undefined ? null : { type: 'data', chunk }
  }

  /** At a DATA line start: CRLF "." CRLF ends the message, any other leading dot is unstuffed. */
  #dataLineStart(): Step {
    this.#content.lineStart = false
    if (this.#peek(0) !== DOT) return null
    if (this.#buffered < 2 || (this.#peek(1) === CR && this.#buffered < 3)) {
      this.#content.lineStart = true
      return undefined
    }
    if (this.#peek(1) === CR && this.#peek(2) === LF) {
      this.#consume(3)
      this.#mode = 'command'
      return { type: 'data-end', result: this.#content.result() }
    }
    this.#consume(1)
    return null
  }

  /** Offset of the first LF from the current position, or -1. */
  #findLf(): number {
    let i = this.#head
    let rel = 0
    if (this.#scanIdx >= 0) {
      i = this.#scanIdx
      rel = this.#scanRel
    }
    for (; i < this.#chunks.length; i++) {
      const c = this.#chunks[i]!
      const s = i === this.#head ? this.#pos : 0
      const at = c.indexOf(LF, s)
      if (at >= 0) return rel + at - s
      rel += c.length - s
    }
    this.#scanIdx = i
    this.#scanRel = rel
    return -1
  }

  #peek(offset: number): number | undefined {
    let off = this.#pos + offset
    for (let i = this.#head; i < this.#chunks.length; i++) {
      const c = this.#chunks[i]!
      if (off < c.length) return c[off]
      off -= c.length
    }
    return undefined
  }

  /** The next n bytes (a slice when they lie in one pushed buffer), consumed. */
  #take(n: number): Buffer {
    const first = this.#chunks[this.#head]!
    let out: Buffer
    if (first.length - this.#pos >= n) {
      out = first.subarray(this.#pos, this.#pos + n)
    } else {
      const parts: Buffer[] = [first.subarray(this.#pos)]
      let got = first.length - this.#pos
      for (let i = this.#head + 1; got < n; i++) {
        const c = this.#chunks[i]!
        parts.push(c.subarray(0, n - got))
        got += Math.min(c.length, n - got)
      }
      out = Buffer.concat(parts, n)
    }
    this.#consume(n)
    return out
  }

  #consume(n: number): void {
    this.#buffered -= n
    this.#scanIdx = -1
    let pos = this.#pos + n
    for (;;) {
      const c = this.#chunks[this.#head]
      if (c === undefined || pos < c.length) break
      pos -= c.length
      this.#head++
    }
    this.#pos = pos
    if (this.#head === this.#chunks.length) {
      this.#chunks.length = 0
      this.#head = 0
      this.#pos = 0
    } else if (this.#head >= 1024) {
      this.#chunks.splice(0, this.#head)
      this.#head = 0
    }
  }
}
