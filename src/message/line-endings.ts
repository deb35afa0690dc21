/**
 * Line-ending conversion for stores that keep Unix text: qmail's queue, Maildir as qmail-local,
 * Postfix's local and virtual, maildrop and Dovecot write it (LF). Only a CR directly followed by
 * LF changes; a bare CR or bare LF stays, so nothing else in the message moves. The state (a CR
 * at the end of a chunk) is carried across chunk boundaries.
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
