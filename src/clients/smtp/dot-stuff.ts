/**
 * DATA content for the wire (RFC 5321 §4.5.2): line endings normalised first, then
 * dot-stuffing, then the terminating `.<CRLF>`, chunk by chunk in constant memory.
 *
 * Security (SMTP smuggling, security.md §1.1; lettre RUSTSEC-2026-0561): a bare CR or bare
 * LF is turned into CRLF *before* the line-start test, so `\n.\r\n` in content becomes
 * `\r\n..\r\n` and can never end the message at the next hop. No bare CR or LF leaves here.
 */

const CR = 0x0d
const LF = 0x0a
const DOT = 0x2e

export class DotStuffer {
  #atLineStart = true
  #pendingCr = false
  /** Bytes of content seen (before stuffing), for logs. */
  bytesIn = 0

  /** Converts one chunk; the output may be up to twice as long. */
  push(chunk: Uint8Array): Buffer {
    this.bytesIn += chunk.length
    const out = Buffer.allocUnsafe(chunk.length * 2 + 2)
    let o = 0
    let atLineStart = this.#atLineStart
    let pendingCr = this.#pendingCr
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i] as number
      if (pendingCr) {
        pendingCr = false
        out[o++] = CR
        out[o++] = LF
        atLineStart = true
        if (b === LF) continue // a real CRLF
        // A bare CR became CRLF; b starts the next line and is handled below.
      }
      if (b === CR) {
        pendingCr = true
        continue
      }
      if (b === LF) {
        out[o++] = CR
        out[o++] = LF
        atLineStart = true
        continue
      }
      if (atLineStart && b === DOT) out[o++] = DOT
      out[o++] = b
      atLineStart = false
    }
    this.#atLineStart = atLineStart
    this.#pendingCr = pendingCr
    return out.subarray(0, o)
  }

  /** The rest: a CRLF if the content did not end with one, then `.<CRLF>`. */
  end(): Buffer {
    if (this.#pendingCr) return Buffer.from('\r\n.\r\n')
    return Buffer.from(this.#atLineStart ? '.\r\n' : '\r\n.\r\n')
  }
}

/** A whole buffer stuffed and terminated, for tests and small messages. */
export function dotStuff(data: Uint8Array): Buffer {
  const s = new DotStuffer()
  return Buffer.concat([s.push(data), s.end()])
}
