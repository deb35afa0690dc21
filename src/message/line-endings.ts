/**
 * Line-ending conversions. crlfToLf is for stores that keep Unix text: qmail's queue, Maildir as
 * qmail-local, Postfix's local and virtual, maildrop and Dovecot write it (LF); only a CR directly
 * followed by LF changes there. CrlfNormalizer is for content a plugin hands the core (a
 * replacement body): every bare CR and bare LF becomes CRLF (RFC 5322 §2.3), as the
 * `bare_line_endings normalize` policy does for what clients send. The state (a CR at the end of
 * a chunk) is carried across chunk boundaries.
 */
import { Transform, type TransformCallback } from 'node:stream'

/** CRLF → LF; bare CR and bare LF pass through unchanged. */
export function crlfToLf(): Transform {
  let pendingCr = false
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const parts: Buffer[] = []
      let start = 0
      if (pendingCr) {
        pendingCr = false
        if (chunk[0] !== 0x0a) parts.push(CR)
      }
      let i = chunk.indexOf(0x0d, start)
      while (i !== -1) {
        if (i === chunk.length - 1) {
          parts.push(chunk.subarray(start, i))
          pendingCr = true
          start = chunk.length
          break
        }
        if (chunk[i + 1] === 0x0a) {
          parts.push(chunk.subarray(start, i))
          start = i + 1
        }
        i = chunk.indexOf(0x0d, i + 1)
      }
      if (start < chunk.length) parts.push(chunk.subarray(start))
      cb(null, Buffer.concat(parts))
    },
    flush(cb) {
      cb(null, pendingCr ? CR : undefined)
    },
  })
}

const CR = Buffer.from('\r')
const CRLF = Buffer.from('\r\n')

/**
 * Bare CR and bare LF to CRLF, chunk by chunk; a chunk with nothing to change is returned as is.
 * @example
 * const n = new CrlfNormalizer()
 * const out = Buffer.concat([n.push(Buffer.from('a\nb\r')), n.push(Buffer.from('\nc')), n.end()]) // 'a\r\nb\r\nc'
 */
export class CrlfNormalizer {
  #pendingCr = false

  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk
    const parts: Buffer[] = []
    let from = 0
    if (this.#pendingCr) {
      this.#pendingCr = false
      parts.push(chunk[0] === 0x0a ? CR : CRLF) // the LF that completes it stays in the chunk
      if (chunk[0] === 0x0a) {
        parts.push(chunk.subarray(0, 1))
        from = 1
      }
    }
    let copied = from
    for (let i = from; i < chunk.length; i++) {
      const c = chunk[i]
      if (c === 0x0d) {
        if (chunk[i + 1] === 0x0a) {
          i++
          continue
        }
        parts.push(chunk.subarray(copied, i))
        copied = i + 1
        if (i === chunk.length - 1)
          this.#pendingCr = true // CRLF or bare CR: the next chunk says
        else parts.push(CRLF)
      } else if (c === 0x0a) {
        parts.push(chunk.subarray(copied, i), CRLF)
        copied = i + 1
      }
    }
    if (parts.length === 0) return chunk
    parts.push(chunk.subarray(copied))
    return Buffer.concat(parts)
  }

  /** What is held back at the end: a final CR becomes CRLF. */
  end(): Buffer {
    const held = this.#pendingCr
    this.#pendingCr = false
    return held ? CRLF : Buffer.alloc(0)
  }
}
