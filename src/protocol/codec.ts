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

export type BareLineEndingPolicy = 'reject' | 'normalize'

export interface MessageScanOptions {
  /** Bytes of unstuffed content; beyond it content is counted but no longer emitted. */
  readonly maxMessageSize: number
  /** Longest content line (bytes, without its line end) before `longLine` is flagged. */
  readonly maxLineLength: number
  readonly bareLineEndings: BareLineEndingPolicy
  /** BDAT with BODY=BINARYMIME: no line checks at all. */
  readonly binary: boolean
}

export interface ContentResult {
  /** Content bytes seen for the whole message so far (after unstuffing and normalising), even beyond the limit. */
  readonly size: number
  readonly overSize: boolean
  /** LF not preceded by CR. */
  readonly bareLf: number
  /** CR not followed by LF. */
  readonly bareCr: number
  readonly longLine: boolean
}

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
const CRLF_BYTES = Buffer.from('\r\n')
const LF_BYTES = Buffer.from('\n')

const commandError = (error: CommandError): CodecEvent => Object.freeze({ type: 'command-error', error })
const TOO_LONG = commandError('too-long')
const BARE_LF = commandError('bare-lf')
const BARE_CR = commandError('bare-cr')
const NUL_BYTE = commandError('nul')

/** Used when the session starts content without beginMessage(): no size limit, RFC 5321 §4.5.3.1.6 lines. */
const DEFAULT_SCAN: MessageScanOptions = {
  maxMessageSize: Number.POSITIVE_INFINITY,
  maxLineLength: 998,
  bareLineEndings: 'reject',
  binary: false,
}

type Mode = 'command' | 'data' | 'bdat'

/** `next()` steps return null when they made progress without an event to report. */
type Step = CodecEvent | undefined | null

const indexOrLength = (b: Buffer, byte: number, from: number): number => {
  const i = b.indexOf(byte, from)
  return i < 0 ? b.length : i
}

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
  #scanIdx = -1
  #scanRel = 0

  // Content mode.
  #opts: MessageScanOptions = DEFAULT_SCAN
  #remaining = 0 // BDAT bytes still to read
  #last = false
  #lineStart = false // right after a real CRLF (or at the start of DATA)
  #prevCr = false // the last content byte was a CR whose successor has not been seen yet
  #pendingOut: Buffer | undefined // a normalising CRLF or LF still to emit
  #nextCr = -1 // cached positions in #chunks[#head] (its length when there is none)
  #nextLf = -1

  // Per message.
  #size = 0
  #overSize = false
  #bareLf = 0
  #bareCr = 0
  #longLine = false
  #lineLen = 0

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
    this.#opts = opts
    this.#size = 0
    this.#overSize = false
    this.#bareLf = 0
    this.#bareCr = 0
    this.#longLine = false
    this.#lineLen = 0
    this.#prevCr = false
    this.#pendingOut = undefined
  }

  /** Switches to DATA mode at the current position (after the DATA command line). */
  startData(): void {
    this.#mode = 'data'
    this.#lineStart = true
    this.#prevCr = false
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
    this.#lineStart = false
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
    this.#nextCr = this.#nextLf = -1
  }

  /** True while in DATA or BDAT mode. */
  inContent(): boolean {
    return this.#mode !== 'command'
  }

  #nextCommand(): Step {
    if (this.#discarding) {
      const lf = this.#findLf()
      if (lf < 0) {
        this.#consume(this.#buffered)
        return undefined
      }
      this.#consume(lf + 1)
      this.#discarding = false
    }
    if (this.#buffered === 0) return undefined
    const lf = this.#findLf()
    if (lf < 0) {
      if (this.#buffered < this.#limit) return undefined
      // Drop what we have now, so memory stays bounded however long the line gets.
      this.#consume(this.#buffered)
      this.#discarding = true
      return TOO_LONG
    }
    if (lf + 1 > this.#limit) {
      this.#consume(lf + 1)
      return TOO_LONG
    }
    const line = this.#take(lf + 1)
    if (lf === 0 || line[lf - 1] !== CR) return BARE_LF
    const body = line.subarray(0, lf - 1)
    if (body.indexOf(CR) >= 0) return BARE_CR
    if (body.indexOf(NUL) >= 0) return NUL_BYTE
    return { type: 'command', line: body }
  }

  #nextContent(): Step {
    if (this.#pendingOut !== undefined) {
      const out = this.#pendingOut
      this.#pendingOut = undefined
      return this.#emit(out)
    }
    if (this.#mode === 'bdat' && this.#remaining === 0) return this.#endBdat()
    if (this.#buffered === 0) return undefined
    if (this.#lineStart && this.#mode === 'data') return this.#dataLineStart()
    if (this.#mode === 'bdat' && this.#opts.binary) {
      const n = Math.min(this.#chunks[this.#head]!.length - this.#pos, this.#remaining)
      return this.#advance(this.#pos, this.#pos + n, this.#pos + n)
    }
    return this.#scanText()
  }

  /** At a DATA line start: CRLF "." CRLF ends the message, any other leading dot is unstuffed. */
  #dataLineStart(): Step {
    if (this.#peek(0) !== DOT) {
      this.#lineStart = false
      return null
    }
    if (this.#buffered < 2) return undefined
    if (this.#peek(1) === CR) {
      if (this.#buffered < 3) return undefined
      if (this.#peek(2) === LF) {
        this.#consume(3)
        this.#lineStart = false
        this.#mode = 'command'
        return { type: 'data-end', result: this.#result() }
      }
    }
    this.#consume(1)
    this.#lineStart = false
    return null
  }

  #endBdat(): Step {
    if (this.#last && this.#prevCr) {
      this.#prevCr = false
      this.#bareCr++
      if (this.#opts.bareLineEndings === 'normalize') {
        this.#pendingOut = LF_BYTES
        return null
      }
    }
    this.#mode = 'command'
    return { type: 'data-end', result: this.#result() }
  }

  /**
   * Emits the longest run of the head buffer that needs no change, counting line ends on the way. Only a
   * DATA line start with a dot, or a bare CR/LF under 'normalize', cuts the run short.
   */
  #scanText(): Step {
    const b = this.#chunks[this.#head]!
    const start = this.#pos
    const bdat = this.#mode === 'bdat'
    const end = bdat ? Math.min(b.length, start + this.#remaining) : b.length
    const normalize = this.#opts.bareLineEndings === 'normalize'
    let p = start
    if (this.#prevCr) {
      this.#prevCr = false
      if (b[p] === LF) {
        p++
        this.#lineStart = !bdat
      } else {
        this.#bareCr++
        if (normalize) return this.#emit(LF_BYTES)
      }
    }
    while (p < end) {
      if (this.#lineStart) {
        if (b[p] === DOT) break
        this.#lineStart = false
      }
      let cr = this.#nextCr
      if (cr < p) cr = this.#nextCr = indexOrLength(b, CR, p)
      let lf = this.#nextLf
      if (lf < p) lf = this.#nextLf = indexOrLength(b, LF, p)
      const k = Math.min(cr, lf)
      if (k >= end) {
        this.#addLine(end - p)
        p = end
        break
      }
      this.#addLine(k - p)
      this.#lineLen = 0
      if (k === lf) {
        // A CRLF is found at its CR, so this LF is bare.
        this.#bareLf++
        if (normalize) {
          this.#pendingOut = CRLF_BYTES
          return this.#advance(start, k, k + 1)
        }
        p = k + 1
      } else if (k + 1 === end) {
        this.#prevCr = true // settled by the next byte, which may arrive in a later push or BDAT chunk
        p = end
      } else if (b[k + 1] === LF) {
        p = k + 2
        this.#lineStart = !bdat
      } else {
        this.#bareCr++
        p = k + 1
        if (normalize) {
          this.#pendingOut = LF_BYTES
          return this.#advance(start, p, p)
        }
      }
    }
    return this.#advance(start, p, p)
  }

  #addLine(n: number): void {
    this.#lineLen += n
    if (this.#lineLen > this.#opts.maxLineLength) this.#longLine = true
  }

  /** Consumes the head buffer up to `to` and emits its bytes `from`..`emitTo`. */
  #advance(from: number, emitTo: number, to: number): Step {
    const seg = this.#chunks[this.#head]!.subarray(from, emitTo)
    if (this.#mode === 'bdat') this.#remaining -= to - from
    this.#consume(to - from)
    return this.#emit(seg)
  }

  #emit(seg: Buffer): Step {
    const n = seg.length
    if (n === 0) return null
    const room = this.#opts.maxMessageSize - this.#size
    this.#size += n
    if (room < n) this.#overSize = true
    if (room <= 0) return null
    return { type: 'data', chunk: room < n ? seg.subarray(0, room) : seg }
  }

  #result(): ContentResult {
    return {
      size: this.#size,
      overSize: this.#overSize,
      bareLf: this.#bareLf,
      bareCr: this.#bareCr,
      longLine: this.#longLine,
    }
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
      this.#nextCr = this.#nextLf = -1
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
