/**
 * DKIM's "relaxed" canonicalization (RFC 6376 §3.4.2 for header fields, §3.4.4 for the body),
 * what our signer hashes. Bytes stay bytes: 8-bit header content (RFC 6532) is hashed as
 * received, never re-encoded. Verification is mailauth's (verify.ts); the tests check that
 * both agree, and dkimpy and OpenDKIM agree with us (test/interop/dkim-interop.test.ts).
 */
import { createHash, type Hash } from 'node:crypto'

const CR = 0x0d
const LF = 0x0a
const SP = 0x20
const TAB = 0x09
/** Canonical octets are gathered in a block of this size before hashing. */
const OUT_SIZE = 16_384

/**
 * One header field in relaxed form: the name in lower case, the value unfolded, each run of
 * white space one SP, none at the ends, then CRLF (`withCrlf: false` for the signature's own
 * field, which is hashed without it, RFC 6376 §3.7).
 * @example relaxedHeader(Buffer.from('Subject : Hello \r\n\tWorld  \r\n')) // 'subject:Hello World\r\n'
 */
export function relaxedHeader(raw: Buffer, withCrlf = true): Buffer {
  const text = raw.toString('latin1')
  const colon = text.indexOf(':')
  const name = (colon < 0 ? text : text.slice(0, colon)).replace(/[ \t]+$/, '').toLowerCase()
  const value = (colon < 0 ? '' : text.slice(colon + 1))
    .replace(/\r\n/g, '')
    .replace(/[ \t]+/g, ' ')
    .replace(/^ | $/g, '')
  return Buffer.from(`${name}:${value}${withCrlf ? '\r\n' : ''}`, 'latin1')
}

/**
 * The SHA-256 of a body in relaxed form, fed in chunks of any size: white space runs become one
 * SP, white space at line ends and empty lines at the end go, and a last line without CRLF gets
 * one. A bare LF ends a line too (as mailauth, dkimpy and OpenDKIM read it); a bare CR is an
 * ordinary character.
 */
export class RelaxedBodyHash {
  readonly #hash: Hash = createHash('sha256')
  readonly #out = Buffer.allocUnsafe(OUT_SIZE)
  #at = 0
  #pendingCr = false
  #pendingSpace = false
  #lineHasContent = false
  #emptyLines = 0

  update(chunk: Buffer): void {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i] as number
      if (this.#pendingCr) {
        this.#pendingCr = false
        if (b === LF) {
          this.#endLine()
          continue
        }
        this.#content(CR)
      }
      if (b === CR) this.#pendingCr = true
      else if (b === LF) this.#endLine()
      else if (b === SP || b === TAB) this.#pendingSpace = true
      else this.#content(b)
    }
  }

  /** The base64 digest, for `bh=`. */
  digest(): string {
    if (this.#pendingCr) this.#content(CR)
    this.#pendingCr = false
    if (this.#lineHasContent) {
      this.#put(CR)
      this.#put(LF)
    }
    this.#hash.update(this.#out.subarray(0, this.#at))
    this.#at = 0
    return this.#hash.digest('base64')
  }

  #put(b: number): void {
    if (this.#at === OUT_SIZE) {
      this.#hash.update(this.#out)
      this.#at = 0
    }
    this.#out[this.#at++] = b
  }

  #content(b: number): void {
    for (; this.#emptyLines > 0; this.#emptyLines--) {
      this.#put(CR)
      this.#put(LF)
    }
    if (this.#pendingSpace) this.#put(SP)
    this.#pendingSpace = false
    this.#lineHasContent = true
    this.#put(b)
  }

  #endLine(): void {
    this.#pendingSpace = false
    if (this.#lineHasContent) {
      this.#put(CR)
      this.#put(LF)
    } else this.#emptyLines++
    this.#lineHasContent = false
  }
}

/** The relaxed body hash of a whole stream (bodyStream() of a message). */
export async function relaxedBodyHash(body: AsyncIterable<Buffer | string> | Iterable<Buffer>): Promise<string> {
  const hash = new RelaxedBodyHash()
  for await (const chunk of body) hash.update(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk)
  return hash.digest()
}
