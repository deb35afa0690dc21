/**
 * Message content scanning for the SMTP framer (codec.ts): line ends, size, and the DATA line-start state.
 *
 * Works on one received buffer at a time and finds runs that can be passed on as zero-copy slices. It
 * does not own the input queue nor find the end of DATA; codec.ts does both.
 * RFC 5321 §2.3.8 (CRLF is the only line end), §4.5.3.1.6 (text line length); RFC 1870 (SIZE).
 * Security: a bare CR or LF is counted and never makes a DATA line start, so no dot after one can end
 * the message or be unstuffed (SMTP smuggling, CVE-2023-51764 family).
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
  /** Content bytes for the whole message so far (unstuffed, and after normalising), even beyond the limit. */
  readonly size: number
  readonly overSize: boolean
  /** LF not preceded by CR. */
  readonly bareLf: number
  /** CR not followed by LF. */
  readonly bareCr: number
  readonly longLine: boolean
}

const CR = 0x0d
const LF = 0x0a
const DOT = 0x2e
const CRLF_BYTES = Buffer.from('\r\n')
const LF_BYTES = Buffer.from('\n')

/** Used when content starts without beginMessage(): no size limit, RFC 5321 §4.5.3.1.6 lines. */
const DEFAULT_SCAN: MessageScanOptions = {
  maxMessageSize: Number.POSITIVE_INFINITY,
  maxLineLength: 998,
  bareLineEndings: 'reject',
  binary: false,
}

const indexOrLength = (b: Buffer, byte: number, from: number): number => {
  const i = b.indexOf(byte, from)
  return i < 0 ? b.length : i
}

/** Per-message content state. The codec reads `lineStart` and `pendingOut` and clears them as it acts. */
export class ContentScanner {
  opts: MessageScanOptions = DEFAULT_SCAN
  /** Right after a real CRLF, or at the start of DATA: where a dot is unstuffed or ends the message. */
  lineStart = false
  /** A normalising CRLF or LF still to emit, before anything else. */
  pendingOut: Buffer | undefined
  /** Where the run found by the last scan() ends (it may stop short of the bytes consumed). */
  emitTo = 0

  #prevCr = false // the last content byte was a CR whose successor has not been seen yet
  #cached: Buffer | undefined // the next CR and LF in this buffer after emitTo (its length when none)
  #nextCr = -1
  #nextLf = -1
  #size = 0
  #overSize = false
  #bareLf = 0
  #bareCr = 0
  #longLine = false
  #lineLen = 0

  begin(opts: MessageScanOptions): void {
    this.opts = opts
    this.#size = this.#bareLf = this.#bareCr = this.#lineLen = 0
    this.#overSize = this.#longLine = this.#prevCr = false
    this.pendingOut = undefined
  }

  /** At the end of the last BDAT chunk a trailing CR has no LF to come, so it is bare. */
  endChunk(last: boolean): void {
    if (!last || !this.#prevCr) return
    this.#prevCr = false
    this.#bareCr++
    if (this.opts.bareLineEndings === 'normalize') this.pendingOut = LF_BYTES
  }

  /**
   * Scans b[start, end) for the longest run that needs no change, counting line ends on the way, and
   * returns how far it consumed; the run is b[start, emitTo). Only a DATA line start with a dot, or a bare
   * CR/LF under 'normalize' (which sets pendingOut), cuts it short. Buffers are treated as immutable.
   */
  scan(b: Buffer, start: number, end: number, data: boolean): number {
    const normalize = this.opts.bareLineEndings === 'normalize'
    // Valid only while positions in one buffer move forward (the same buffer may be pushed twice).
    if (this.#cached !== b || start < this.emitTo) {
      this.#cached = b
      this.#nextCr = this.#nextLf = -1
    }
    let p = start
    if (this.#prevCr) {
      this.#prevCr = false
      if (b[p] === LF) {
        p++
        this.lineStart = data
      } else {
        this.#bareCr++
        if (normalize) return this.#cut(start, start, LF_BYTES)
      }
    }
    while (p < end) {
      if (this.lineStart) {
        if (b[p] === DOT) break
        this.lineStart = false
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
        if (normalize) return this.#cut(k, k + 1, CRLF_BYTES)
        p = k + 1
      } else if (k + 1 === end) {
        this.#prevCr = true // settled by the next byte, which may come in a later push or BDAT chunk
        p = end
      } else if (b[k + 1] === LF) {
        p = k + 2
        this.lineStart = data
      } else {
        this.#bareCr++
        p = k + 1
        if (normalize) return this.#cut(p, p, LF_BYTES)
      }
    }
    this.emitTo = p
    return p
  }

  /**
   * Counts `seg` into the message size and returns what of it may still be passed on, or undefined.
   * Past maxMessageSize content is only counted (RFC 1870: read to the end, then reply 552).
   */
  emit(seg: Buffer): Buffer | undefined {
    const n = seg.length
    if (n === 0) return undefined
    const room = this.opts.maxMessageSize - this.#size
    this.#size += n
    if (room < n) this.#overSize = true
    if (room <= 0) return undefined
    return room < n ? seg.subarray(0, room) : seg
  }

  result(): ContentResult {
    return {
      size: this.#size,
      overSize: this.#overSize,
      bareLf: this.#bareLf,
      bareCr: this.#bareCr,
      longLine: this.#longLine,
    }
  }

  #cut(emitTo: number, to: number, out: Buffer): number {
    this.emitTo = emitTo
    this.pendingOut = out
    return to
  }

  #addLine(n: number): void {
    this.#lineLen += n
    if (this.#lineLen > this.opts.maxLineLength) this.#longLine = true
  }
}
