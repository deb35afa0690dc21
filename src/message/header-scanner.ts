/**
 * Incremental split of a message into header section and body, across arbitrary chunk
 * boundaries (a chunk may end mid-line or between CR and LF).
 *
 * RFC 5322 §2.1/§2.2: the header section ends at the first empty line. For tolerance, a line
 * that is neither a field (`name *WSP ":"`) nor a continuation of one also ends it and is the
 * first body line (not consumed, no separator). An unterminated last line is body too, so the
 * message is always reproduced byte for byte. Lines are classified from their first bytes, so a
 * long body line never counts against the header limit.
 * Security: header memory is capped by maxHeaderBytes, past which nothing more is kept. A field
 * costs more memory than its bytes, so each counts FIELD_COST octets on top of them: a header of
 * thousands of tiny fields cannot hold many times the limit (issue 18 F1).
 */
import type { HeaderField } from './headers.ts'

type LineKind = 'field' | 'continuation' | 'separator' | 'body' | 'unknown'

const CR = 0x0d
const LF = 0x0a
/** RFC 5321 §4.5.3.1.6: a line is at most 1000 octets, so a longer field name is not a field. */
const CLASSIFY_MAX = 1000
/** What a parsed field costs in memory besides its bytes (object, name string, Buffer view), roughly. */
export const FIELD_COST = 128

const isWsp = (b: number | undefined): boolean => b === 0x20 || b === 0x09
/** RFC 5322 ftext: printable US-ASCII except ":". */
export const isFtext = (b: number | undefined): boolean => b !== undefined && b >= 33 && b <= 126 && b !== 58

/** Classifies a header-section line from its first bytes; 'unknown' means more bytes are needed. */
export function classifyLine(h: Buffer): LineKind {
  const b0 = h[0]
  if (b0 === undefined) return 'unknown'
  if (isWsp(b0)) return 'continuation'
  if (b0 === CR) return h.length < 2 ? 'unknown' : h[1] === LF ? 'separator' : 'body'
  let i = 0
  while (i < h.length && isFtext(h[i])) i++
  if (i === h.length) return 'unknown'
  if (i === 0) return 'body'
  while (i < h.length && isWsp(h[i])) i++
  if (i === h.length) return 'unknown'
  return h[i] === 0x3a ? 'field' : 'body'
}

/** Builds a field from its raw bytes (first line starts with the name). */
export function fieldFromRaw(raw: Buffer): HeaderField {
  let end = 0
  while (isFtext(raw[end])) end++
  return { name: raw.toString('latin1', 0, end), raw }
}

/** Bytes appended piece by piece into one buffer that grows by doubling: no Buffer per piece. */
class ByteRun {
  #buf = Buffer.alloc(0)
  length = 0

  append(src: Buffer, start: number, end: number): void {
    const n = end - start
    if (this.length + n > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(256, 2 * this.#buf.length, this.length + n))
      this.#buf.copy(grown, 0, 0, this.length)
      this.#buf = grown
    }
    src.copy(this.#buf, this.length, start, end)
    this.length += n
  }

  /** The bytes held, without copying (valid until the next append). */
  view(): Buffer {
    return this.#buf.subarray(0, this.length)
  }

  /** An exact copy of the bytes from `from` on. */
  copy(from = 0): Buffer {
    return Buffer.from(this.#buf.subarray(from, this.length))
  }
}

export class HeaderScanner {
  readonly maxHeaderBytes: number
  readonly fields: HeaderField[] = []
  /** True once the header section is complete. */
  done = false
  /** The header section ended with an empty line (which belongs to neither part). */
  hasSeparator = false
  tooBig = false
  /** Bytes of the header section including the separator, kept or not. */
  headerBytes = 0
  #fieldCount = 0

  // Bytes are gathered into two runs, never kept as one Buffer per received chunk, so a header
  // sent in one-octet chunks (BDAT 1) costs what its bytes cost (issue 18 F1).
  #pending = new ByteRun() // the current line while it is too short to classify (< CLASSIFY_MAX)
  #field = new ByteRun() // the kept bytes of the current field: its complete lines, then the current one
  #lineAt = 0 // where the current line starts in #field
  #lineBytes = 0 // bytes of the current, classified line, kept or not
  #kind: 'field' | 'continuation' | undefined // undefined: line not classified yet
  #inField = false

  constructor(maxHeaderBytes: number) {
    this.maxHeaderBytes = maxHeaderBytes
  }

  /**
   * Feeds a chunk. Returns the body bytes it contained once the header section has ended
   * (possibly an empty list), or undefined while still inside the header section.
   */
  push(chunk: Buffer): Buffer[] | undefined {
    let pos = 0
    while (pos < chunk.length) {
      if (this.#kind === undefined) {
        const held = this.#pending.length
        let head: Buffer
        if (held === 0) head = chunk.subarray(pos, pos + CLASSIFY_MAX)
        else {
          this.#pending.append(chunk, pos, Math.min(chunk.length, pos + CLASSIFY_MAX - held))
          head = this.#pending.view()
        }
        let kind = classifyLine(head)
        if (kind === 'unknown' && head.length >= CLASSIFY_MAX) kind = 'body'
        if (kind === 'continuation' && !this.#inField) kind = 'body'
        if (kind === 'unknown') {
          // Fewer than CLASSIFY_MAX bytes in all, the whole rest of the chunk: keep them until the next one.
          if (held === 0) this.#pending.append(chunk, pos, chunk.length)
          return undefined
        }
        this.#pending.length = held // the chunk's bytes are taken from the chunk itself below
        if (kind === 'body') {
          const body = held === 0 ? [chunk.subarray(pos)] : [this.#pending.copy(), chunk.subarray(pos)]
          this.#finish(false)
          return body
        }
        if (kind === 'separator') {
          pos += 2 - held // the CR may have come in the previous chunk
          this.headerBytes += 2
          this.#finish(true)
          return [chunk.subarray(pos)]
        }
        if (kind === 'field') {
          this.#endField()
          this.#fieldCount++
        }
        this.#inField = true
        this.#kind = kind
        this.#lineAt = this.#field.length
        this.#lineBytes = 0
        if (held > 0) this.#keep(this.#pending.view(), 0, held)
        this.#pending.length = 0
      }
      const lf = chunk.indexOf(LF, pos)
      const end = lf === -1 ? chunk.length : lf + 1
      this.#keep(chunk, pos, end)
      pos = end
      if (lf !== -1) this.#kind = undefined
    }
    return undefined
  }

  /** Ends the input: an unfinished last line becomes the body (byte-exact, see file header). */
  end(): Buffer[] {
    if (this.done) return []
    let body: Buffer[] = []
    if (this.#kind === undefined) {
      if (this.#pending.length > 0) body = [this.#pending.copy()]
    } else if (!this.tooBig) {
      body = [this.#field.copy(this.#lineAt)]
      this.#field.length = this.#lineAt
      this.headerBytes -= this.#lineBytes
    }
    this.#finish(false)
    return body
  }

  #keep(src: Buffer, start: number, end: number): void {
    this.headerBytes += end - start
    this.#lineBytes += end - start
    if (!this.tooBig && this.headerBytes + this.#fieldCount * FIELD_COST > this.maxHeaderBytes) {
      this.tooBig = true
      this.#field = new ByteRun()
    }
    if (!this.tooBig) this.#field.append(src, start, end)
  }

  #endField(): void {
    if (this.#field.length > 0) this.fields.push(fieldFromRaw(this.#field.copy()))
    this.#field.length = 0
  }

  #finish(separator: boolean): void {
    this.#endField()
    this.#pending = new ByteRun()
    this.#field = new ByteRun()
    this.#kind = undefined
    this.hasSeparator = separator
    this.done = true
  }
}
