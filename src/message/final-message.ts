/**
 * The message as handed to the queue: prepended trace fields (Return-Path, Delivered-To), the
 * header section after plugin edits, the empty separator line, the body.
 *
 * Byte-exact: with no edit and nothing prepended the output equals what was received. A message
 * that had no separator gets none, unless fields were added in front of a body, which then needs
 * one to stay a body (RFC 5322 §2.1).
 */
import { Readable } from 'node:stream'
import type { MessageSpool } from './spool.ts'

export interface FinalMessageOptions {
  /** Complete header fields (each ending in CRLF) written before the header section. */
  readonly prepend?: readonly Buffer[]
}

const CRLF = Buffer.from('\r\n')

function parts(spool: MessageSpool, opts: FinalMessageOptions): { head: Buffer[]; headSize: number } {
  const prepend = opts.prepend ?? []
  for (const p of prepend) {
    if (p.length < 2 || p[p.length - 2] !== 0x0d || p[p.length - 1] !== 0x0a) {
      throw new TypeError('prepended header fields must end with CRLF')
    }
  }
  const head = [...prepend, spool.headers.toBuffer()]
  const changed = prepend.length > 0 || spool.headers.edited
  if (spool.hasSeparator || (changed && spool.bodySize > 0)) head.push(CRLF)
  let headSize = 0
  for (const b of head) headSize += b.length
  return { head, headSize }
}

/**
 * A new stream of the final message; read it once per delivery.
 * @example await pipeline(finalMessageStream(spool, { prepend: [Buffer.from('Return-Path: <a@b.example>\r\n')] }), out)
 */
export function finalMessageStream(spool: MessageSpool, opts: FinalMessageOptions = {}): Readable {
  const { head } = parts(spool, opts)
  async function* generate(): AsyncGenerator<Buffer> {
    yield* head
    // Opened lazily, and destroyed by for-await when the consumer stops early.
    for await (const chunk of spool.bodyStream()) yield chunk as Buffer
  }
  return Readable.from(generate(), { objectMode: false })
}

/** The final message in one buffer, for small messages and tests. */
export async function finalMessageBuffer(spool: MessageSpool, opts: FinalMessageOptions = {}): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of finalMessageStream(spool, opts)) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Size in bytes of the final message, without reading the body. */
export function finalMessageSize(spool: MessageSpool, opts: FinalMessageOptions = {}): number {
  return parts(spool, opts).headSize + spool.bodySize
}
