/**
 * One message after DATA, as plugins edit it and the queue receives it: the header section
 * received (parsed once, edited in place) and the body, as received or as a plugin replaced it.
 *
 * A replacement body goes through a spool of its own (memory up to the threshold, then a file),
 * so its size does not matter; it takes the place of the old body only once it is complete, and
 * the old body's memory and file are then released. Replacements run one after another.
 * Line endings of a replacement are made CRLF (bare CR or LF would be smuggling material at the
 * next hop), except for BINARYMIME content, which is kept byte for byte.
 * Not here: who may edit when (host/edit-window.ts) and the plugins' view (host/message.ts).
 */
import type { Readable } from 'node:stream'
import { type FinalMessageOptions, finalMessageSize, finalMessageStream, type MessageParts } from './final-message.ts'
import type { HeaderBlock } from './headers.ts'
import { CrlfNormalizer } from './line-endings.ts'
import { MessageSpool } from './spool.ts'

/** A new body: bytes, text (UTF-8), or a stream or async iterable of byte chunks. */
export type BodySource = string | Uint8Array | AsyncIterable<Uint8Array>

/** Larger pieces of a source are written in slices, so line-ending work and backpressure stay fine-grained. */
const SLICE = 64 * 1024

export interface MessageContentOptions {
  /** Make bare CR and LF in replacement bodies CRLF (off for BINARYMIME). */
  readonly normalizeLineEndings: boolean
  /**
   * Whether the body may still change; asked again when a replacement is complete, so that one
   * started by a hook that has since timed out never lands once the queue has the message.
   */
  readonly editable?: () => boolean
}

export class MessageContent implements MessageParts {
  readonly #received: MessageSpool
  readonly #normalize: boolean
  readonly #editable: () => boolean
  #replacement: MessageSpool | undefined
  #writing: MessageSpool | undefined
  /** Replaced bodies whose file could not be removed (read-only spool): tried again, and reported, by cleanup(). */
  readonly #unremoved: MessageSpool[] = []
  #queue: Promise<unknown> = Promise.resolve()
  #closed = false

  /** `received` must have ended; this object takes over cleaning it up. */
  constructor(received: MessageSpool, opts: MessageContentOptions) {
    this.#received = received
    this.#normalize = opts.normalizeLineEndings
    this.#editable = opts.editable ?? (() => true)
  }

  get headers(): HeaderBlock {
    return this.#received.headers
  }

  get hasSeparator(): boolean {
    return this.#received.hasSeparator
  }

  get bodyReplaced(): boolean {
    return this.#replacement !== undefined
  }

  get bodySize(): number {
    return this.#body.bodySize
  }

  /** Octets of stream() without prepended fields. */
  get size(): number {
    return finalMessageSize(this)
  }

  bodyStream(): Readable {
    return this.#body.bodyStream()
  }

  bodyPath(): Promise<string> {
    return this.#body.bodyPath()
  }

  stream(opts: FinalMessageOptions = {}): Readable {
    return finalMessageStream(this, opts)
  }

  /**
   * Spools `source` as the new body, then swaps it in and releases the old one. Rejects (the old
   * body stays) when the source fails or yields something other than bytes, on a spool I/O error,
   * and when the message is closed or no longer editable meanwhile.
   */
  replaceBody(source: BodySource): Promise<void> {
    const run = this.#queue.then(() => this.#replace(source))
    this.#queue = run.catch(() => {})
    return run
  }

  /**
   * Ends editing: an unfinished replacement is dropped, every spooled body removed. Rejects when
   * a file cannot be removed, after trying every one.
   */
  async cleanup(): Promise<void> {
    this.#closed = true
    const spools = [this.#writing, this.#replacement, this.#received, ...this.#unremoved]
    const results = await Promise.allSettled(spools.map((s) => (s === this.#writing ? s?.abort() : s?.cleanup())))
    const failed = results.find((r) => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  }

  get #body(): MessageSpool {
    return this.#replacement ?? this.#received
  }

  async #replace(source: BodySource): Promise<void> {
    if (this.#closed || !this.#editable()) throw new Error('replaceBody: the message is no longer open for edits')
    const spool = new MessageSpool({
      spoolDir: this.#received.spoolDir,
      memoryThreshold: this.#received.memoryThreshold,
      bodyOnly: true,
    })
    this.#writing = spool
    try {
      const normalizer = this.#normalize ? new CrlfNormalizer() : undefined
      for await (const chunk of chunksOf(source)) {
        const out = normalizer === undefined ? chunk : normalizer.push(chunk)
        if (!spool.write(out)) await spool.drained()
      }
      if (normalizer !== undefined) spool.write(normalizer.end())
      await spool.end()
      if (this.#closed || !this.#editable())
        throw new Error('replaceBody: the message stopped taking edits while the new body was written')
    } catch (e) {
      await spool.abort()
      throw e
    } finally {
      this.#writing = undefined
    }
    const old = this.#body
    this.#replacement = spool
    // Readers that already opened the old body keep what they have (an open file survives unlink).
    // The new body is in place either way: a file that cannot go now is the session's to report.
    await old.cleanup().catch(() => this.#unremoved.push(old))
  }
}

/** The source as Buffers of at most SLICE octets (views, not copies). */
async function* chunksOf(source: BodySource): AsyncGenerator<Buffer> {
  if (typeof source === 'string') {
    yield* slices(Buffer.from(source, 'utf8'))
    return
  }
  if (source instanceof Uint8Array) {
    yield* slices(source)
    return
  }
  if (typeof (source as Partial<AsyncIterable<unknown>>)?.[Symbol.asyncIterator] !== 'function') {
    throw new TypeError('replaceBody: expected a Buffer, a string, a Readable or an async iterable of Buffers')
  }
  for await (const chunk of source as AsyncIterable<unknown>) {
    // A Readable with an encoding set yields strings.
    if (typeof chunk === 'string') yield* slices(Buffer.from(chunk, 'utf8'))
    else if (chunk instanceof Uint8Array) yield* slices(chunk)
    else throw new TypeError('replaceBody: a chunk of the new body is not a Buffer, Uint8Array or string')
  }
}

function* slices(bytes: Uint8Array): Generator<Buffer> {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let at = 0; at < b.length; at += SLICE) yield b.subarray(at, at + SLICE)
}
