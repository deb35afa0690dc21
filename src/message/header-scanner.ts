/**
 * Incremental split of a message into header section and body, across arbitrary chunk
 * boundaries (a chunk may end mid-line or between CR and LF).
 *
 * RFC 5322 §2.1/§2.2: the header section ends at the first empty line. For tolerance, a line
 * that is neither a field (`name *WSP ":"`) nor a continuation of one also ends it and is the
 * first body line (not consumed, no separator). An unterminated last line is body too, so the
 * message is always reproduced byte for byte. Lines are classified from their first bytes, so a
 * long body line never counts against the header limit.
 * Security: header bytes kept in memory are capped by maxHeaderBytes; past it nothing more is kept.
 */
import type { HeaderField } from './headers.ts'

type LineKind = 'field' | 'continuation' | 'separator' | 'body' | 'unknown'

const CR = 0x0d
const LF = 0x0a
/** RFC 5321 §4.5.3.1.6: a line is at most 1000 octets, so a longer field name is not a field. */
const CLASSIFY_MAX = 1000

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

  #line: Buffer[] = [] // kept bytes of the current, incomplete line
  #lineLen = 0
  #kind: 'field' | 'continuation' | undefined // undefined: line not classified yet
  #cur: Buffer[] = [] // complete lines of the current field
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
        const head =
          this.#lineLen === 0
            ? chunk.subarray(pos, pos + CLASSIFY_MAX)
            : Buffer.concat([...this.#line, chunk.subarray(pos, pos + CLASSIFY_MAX - this.#lineLen)])
        let kind = classifyLine(head)
        if (kind === 'unknown' && head.length >= CLASSIFY_MAX) kind = 'body'
        if (kind === 'continuation' && !this.#inField) kind = 'body'
        if (kind === 'unknown') {
          // Fewer than CLASSIFY_MAX bytes in all: keep them (copied) until the next chunk.
          this.#line.push(Buffer.from(chunk.subarray(pos)))
          this.#lineLen += chunk.length - pos
          return undefined
        }
        if (kind === 'body') {
          const body = [...this.#line, chunk.subarray(pos)]
          this.#finish(false)
          return body
        }
        if (kind === 'separator') {
          pos += 2 - this.#lineLen // the CR may have come in the previous chunk
          this.headerBytes += 2
          this.#finish(true)
          return [chunk.subarray(pos)]
        }
        if (kind === 'field') this.#endField()
        this.#inField = true
        this.#kind = kind
        const held = this.#line
        this.#line = []
        this.#lineLen = 0
        for (const b of held) this.#keep(b)
      }
      const lf = chunk.indexOf(LF, pos)
      const end = lf === -1 ? chunk.length : lf + 1
      this.#keep(chunk.subarray(pos, end))
      pos = end
      if (lf !== -1) {
        if (!this.tooBig) this.#cur.push(Buffer.concat(this.#line, this.#lineLen))
        this.#line = []
        this.#lineLen = 0
        this.#kind = undefined
      }
    }
    return undefined
  }

  /** Ends the input: an unfinished last line becomes the body (byte-exact, see file header). */
  end(): Buffer[] {
    if (this.done) return []
    const body = this.#line
    if (this.#kind !== undefined) this.headerBytes -= this.#lineLen
    this.#finish(false)
    return body
  }

  #keep(b: Buffer): void {
    this.headerBytes += b.length
    if (!this.tooBig && this.headerBytes > this.maxHeaderBytes) {
      this.tooBig = true
      this.#cur = []
    }
    if (this.tooBig) return
    this.#line.push(Buffer.from(b)) // a copy: never pin the caller's (possibly large) chunk
    this.#lineLen += b.length
  }

  #endField(): void {
    if (this.#cur.length > 0) this.fields.push(fieldFromRaw(Buffer.concat(this.#cur)))
    this.#cur = []
  }

  #finish(separator: boolean): void {
    this.#endField()
    this.#line = []
    this.#lineLen = 0
    this.#kind = undefined
    this.hasSeparator = separator
    this.done = true
  }
}
