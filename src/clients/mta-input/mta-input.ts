/**
 * What a queue plugin hands a local MTA (qmail-queue, exim -bS, postdrop): the envelope as
 * text, refused if an address could break the program's framing, and SMTP dot-stuffing with
 * CRLF kept (batched SMTP), its state carried across chunk boundaries. (CRLF to LF, for qmail,
 * is message/line-endings.ts.)
 */
import { Transform, type TransformCallback } from 'node:stream'
import { formatAddress, type MailFrom, type RcptTo } from '../../protocol/envelope.ts'

/**
 * SMTP dot-stuffing (RFC 5321 §4.5.2) for a CRLF message, then the end-of-data line. A message
 * not ending in a line break gets CRLF before the final dot, so the terminator is a line of its own.
 */
export function dotStuff(): Transform {
  let atLineStart = true
  let last = -1
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const parts: Buffer[] = []
      let start = 0
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i] as number
        if (atLineStart && b === 0x2e) {
          parts.push(chunk.subarray(start, i), DOT)
          start = i
        }
        atLineStart = b === 0x0a
      }
      parts.push(chunk.subarray(start))
      if (chunk.length > 0) last = chunk[chunk.length - 1] as number
      cb(null, Buffer.concat(parts))
    },
    flush(cb) {
      cb(null, last === 0x0a || last === -1 ? END : Buffer.concat([CRLF, END]))
    },
  })
}

const CRLF = Buffer.from('\r\n')
const DOT = Buffer.from('.')
const END = Buffer.from('.\r\n')

/** An address fit to pass to an MTA as one envelope item: no NUL, CR or LF (the parsers already forbid them). */
export function safeEnvelopeAddress(a: string): boolean {
  return !/[\0\r\n]/.test(a)
}

/** The envelope as text for a local MTA, or undefined if any address could break its framing. */
export function mtaEnvelope(txn: {
  readonly mailFrom: MailFrom
  readonly recipients: readonly RcptTo[]
}): { from: string; to: string[] } | undefined {
  const from = formatAddress(txn.mailFrom.address)
  const to = txn.recipients.map((r) => formatAddress(r.address))
  return [from, ...to].every(safeEnvelopeAddress) ? { from, to } : undefined
}
