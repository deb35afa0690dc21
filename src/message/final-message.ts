/**
 * The message as handed to the queue: prepended trace fields (Return-Path, Delivered-To), the
 * header section after plugin edits, the empty separator line, the body (as received, or as a
 * plugin replaced it).
 *
 * Byte-exact: with no edit and nothing prepended the output equals what was received. A message
 * that had no separator gets none, unless fields were added in front of a body or the body was
 * replaced, which then needs one to stay a body (RFC 5322 §2.1).
 */
import { Readable } from 'node:stream'
import type { HeaderBlock } from './headers.ts'

/** What a final message is made of: a MessageSpool as received, or a MessageContent after edits. */
export interface MessageParts {
  readonly headers: HeaderBlock
  /** The received message had an empty line between header section and body. */
  readonly hasSeparator: boolean
  readonly bodySize: number
  /** The body is not the one received: a plugin replaced it. */
  readonly bodyReplaced?: boolean
  bodyStream(): Readable
}

export interface FinalMessageOptions {
  /** Complete header fields (each ending in CRLF) written before the header section. */
  readonly prepend?: readonly Buffer[]
}

const CRLF = Buffer.from('\r\n')

function parts(msg: MessageParts, opts: FinalMessageOptions): { head: Buffer[]; headSize: number } {
  const prepend = opts.prepend ?? []
  for (const p of prepend) {
    if (p.length < 2 || p[p.length - 2] !== 0x0d || p[p.length - 1] !== 0x0a) {
      throw new TypeError('prepended header fields must end with CRLF')
    }
  }
  const head = [...prepend, msg.headers.toBuffer()]
  const changed = prepend.length > 0 || msg.headers.edited || msg.bodyReplaced === true
  if (msg.hasSeparator || (changed && msg.bodySize > 0)) head.push(CRLF)
  let headSize = 0
  for (const b of head) headSize += b.length
  return { head, headSize }
}

/**
 * A new stream of the final message; read it once per delivery.
 * @example await pipeline(finalMessageStream(content, { prepend: [Buffer.from('Return-Path: <a@b.example>\r\n')] }), out)
 */
export function finalMessageStream(msg: MessageParts, opts: FinalMessageOptions = {}): Readable {
  const { head } = parts(msg, opts)
  async function* generate(): AsyncGenerator<Buffer> {
    yield* head
    // Opened lazily, and destroyed by for-await when the consumer stops early.
    for await (const chunk of msg.bodyStream()) yield chunk as Buffer
  }
  return Readable.from(generate(), { objectMode: false })
}

/** The final message in one buffer, for small messages and tests. */
export async function finalMessageBuffer(msg: MessageParts, opts: FinalMessageOptions = {}): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of finalMessageStream(msg, opts)) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Size in bytes of the final message, without reading the body. */
export function finalMessageSize(msg: MessageParts, opts: FinalMessageOptions = {}): number {
  return parts(msg, opts).headSize + msg.bodySize
}
