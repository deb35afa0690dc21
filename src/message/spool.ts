/**
 * MessageSpool: receives the (already unstuffed) message content chunk by chunk, splits the
 * header section from the body on the fly, keeps small bodies in memory and moves larger ones
 * to a temporary file, then lets plugins read the body as often as they need.
 *
 * It does not parse MIME, check sizes against SIZE (the codec counts) or write the queue.
 * Security: memory is bounded (maxHeaderBytes + memoryThreshold + one block + stream buffers)
 * however the content is chunked: pieces smaller than a block are copied into shared blocks, so
 * a flood of tiny chunks (dot-stuffed lines, `BDAT 1`) costs no per-chunk Buffer (issue 18 F1).
 * Temp files are 0600 in a 0700 directory and removed by cleanup()/abort().
 */
import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'
import { HeaderScanner } from './header-scanner.ts'
import { HeaderBlock } from './headers.ts'
import { SpoolFile } from './spool-file.ts'

export interface MessageSpoolOptions {
  /** Directory for bodies above memoryThreshold; created (0700) when first needed. */
  readonly spoolDir: string
  /** Body bytes kept in memory before moving to a file. Default 256 KiB. */
  readonly memoryThreshold?: number
  /** Header bytes kept in memory; past it headerTooBig is set (the session answers 552). Default 64 KiB. */
  readonly maxHeaderBytes?: number
  /** Called once when the header section is complete (qpsmtpd's data_headers_end). Must not throw. */
  readonly onHeaders?: (headers: HeaderBlock) => void
  /** The content is a body alone (a plugin's replacement body): no header section is looked for. */
  readonly bodyOnly?: boolean
}

type State = 'receiving' | 'ended' | 'aborted' | 'cleaned'

/**
 * Body pieces smaller than this are gathered into blocks of this size. A stored piece is then a
 * full block, a copy of a chunk at least this large, or the remainder before one of those or at
 * the end: at most two pieces per block of body, whatever the chunking.
 */
const BLOCK = 16 * 1024

/**
 * @example
 * const spool = new MessageSpool({ spoolDir: '/var/spool/qtsmtpd' })
 * for await (const chunk of data) if (!spool.write(chunk)) await spool.drained()
 * await spool.end()
 * spool.headers.prepend('Received', buildReceived(info))
 * await backend.deliver(finalMessageStream(spool))
 * await spool.cleanup()
 */
export class MessageSpool {
  readonly spoolDir: string
  readonly memoryThreshold: number

  readonly #scanner: HeaderScanner
  readonly #onHeaders: ((headers: HeaderBlock) => void) | undefined
  #headers: HeaderBlock | undefined
  #memory: Buffer[] = []
  #block: Buffer | undefined // small pieces gathered here, in order after everything stored
  #blockUsed = 0
  #file: SpoolFile | undefined
  #fileComplete = false // the file holds the whole body
  #toFile: Promise<string> | undefined
  #state: State = 'receiving'
  #size = 0
  #bodySize = 0
  #callbackError: unknown

  constructor(opts: MessageSpoolOptions) {
    this.spoolDir = opts.spoolDir
    this.memoryThreshold = opts.memoryThreshold ?? 256 * 1024
    this.#scanner = new HeaderScanner(opts.maxHeaderBytes ?? 64 * 1024)
    this.#onHeaders = opts.onHeaders
    if (opts.bodyOnly === true) this.#headers = new HeaderBlock()
  }

  /** The parsed header section; available once it is complete (at the latest after end()). */
  get headers(): HeaderBlock {
    if (this.#headers === undefined) throw new Error('MessageSpool: header section not complete yet')
    return this.#headers
  }

  get headersComplete(): boolean {
    return this.#headers !== undefined
  }

  /** Total bytes received (header section, separator and body). */
  get size(): number {
    return this.#size
  }

  get bodySize(): number {
    return this.#bodySize
  }

  get headerTooBig(): boolean {
    return this.#scanner.tooBig
  }

  /** Bytes of the header section as received, including the empty separator line. */
  get headerSize(): number {
    return this.#scanner.headerBytes
  }

  /** The message had an empty line between header section and body. */
  get hasSeparator(): boolean {
    return this.#scanner.hasSeparator
  }

  /** Number of Received fields, for the hop-count limit (RFC 5321 §6.3). */
  get receivedCount(): number {
    return this.headers.count('received')
  }

  /** The body lives in a file (it grew past memoryThreshold or bodyPath() was called). */
  get onDisk(): boolean {
    return this.#file !== undefined
  }

  /** Adds content. Returns false when the caller should `await spool.drained()` before writing more. */
  write(chunk: Buffer): boolean {
    if (this.#state !== 'receiving') throw new Error(`MessageSpool: write after ${this.#state}`)
    this.#size += chunk.length
    if (this.#headers !== undefined) return this.#writeBody(chunk)
    const body = this.#scanner.push(chunk)
    if (body === undefined) return true
    this.#headersDone()
    let ok = true
    for (const b of body) ok = this.#writeBody(b) && ok
    return ok
  }

  /** Resolves when buffered file writes have drained (immediately when nothing waits). */
  drained(): Promise<void> {
    return this.#file === undefined ? Promise.resolve() : this.#file.drained()
  }

  /** Marks the end of the message; rejects on a spool I/O error (the session answers 4xx). */
  async end(): Promise<void> {
    if (this.#state !== 'receiving') throw new Error(`MessageSpool: end after ${this.#state}`)
    if (this.#headers === undefined) {
      for (const b of this.#scanner.end()) this.#writeBody(b)
      this.#headersDone()
    }
    this.#sealBlock()
    this.#block = undefined
    this.#state = 'ended'
    if (this.#file !== undefined) {
      await this.#file.end()
      this.#fileComplete = true
    }
    if (this.#callbackError !== undefined) throw this.#callbackError
  }

  /** Gives up on a message being received (client gone, RSET, error) and removes temp files. */
  async abort(): Promise<void> {
    if (this.#state === 'receiving') this.#state = 'aborted'
    await this.cleanup()
  }

  /** A new stream over the body on each call, from memory or from the file. */
  bodyStream(): Readable {
    this.#mustBeEnded()
    if (this.#file === undefined || this.#memory.length > 0 || this.bodySize === 0) {
      return Readable.from(this.#memory, { objectMode: false })
    }
    return createReadStream(this.#file.path)
  }

  /** The body as a file, written now if it was in memory (for plugins that need a path). */
  bodyPath(): Promise<string> {
    this.#mustBeEnded()
    this.#toFile ??= (async () => {
      if (this.#file === undefined) {
        const file = new SpoolFile(this.spoolDir, 64 * 1024)
        this.#file = file
        for (const b of this.#memory) file.write(b)
        await file.end()
        this.#fileComplete = true
      }
      return this.#file.path
    })()
    return this.#toFile
  }

  /** Deletes temp files and drops the body from memory; idempotent. Rejects when a file cannot be removed. */
  async cleanup(): Promise<void> {
    if (this.#state === 'ended' || this.#state === 'receiving') this.#state = 'cleaned'
    this.#memory = []
    this.#block = undefined
    await this.#file?.remove()
  }

  #writeBody(b: Buffer): boolean {
    if (b.length === 0) return true
    this.#bodySize += b.length
    if (b.length >= BLOCK) {
      const ok = this.#sealBlock()
      // A copy in memory, so that the piece never pins the caller's buffer; a file write needs none.
      return this.#store(this.#toMemory() ? Buffer.from(b) : b) && ok
    }
    let ok = true
    for (let from = 0; from < b.length; ) {
      this.#block ??= Buffer.allocUnsafe(BLOCK)
      const n = b.copy(this.#block, this.#blockUsed, from)
      from += n
      this.#blockUsed += n
      if (this.#blockUsed === BLOCK) {
        const full = this.#block
        this.#block = undefined
        this.#blockUsed = 0
        ok = this.#store(full) && ok
      }
    }
    // The body just outgrew memory: the file starts now, not when the block is full.
    if (this.#file === undefined && this.#bodySize > this.memoryThreshold) ok = this.#sealBlock() && ok
    return ok
  }

  /** Stores what the block holds, as an exact copy, and keeps the block for reuse. */
  #sealBlock(): boolean {
    if (this.#block === undefined || this.#blockUsed === 0) return true
    const piece = Buffer.from(this.#block.subarray(0, this.#blockUsed))
    this.#blockUsed = 0
    return this.#store(piece)
  }

  /** The body so far still fits in memory (pieces are stored in order, the block holds the newest). */
  #toMemory(): boolean {
    return this.#file === undefined && this.#bodySize <= this.memoryThreshold
  }

  #store(piece: Buffer): boolean {
    if (this.#toMemory()) {
      this.#memory.push(piece)
      return true
    }
    if (this.#file === undefined) {
      // Past the threshold: move what memory holds to a file and keep nothing more in memory.
      this.#file = new SpoolFile(this.spoolDir, 256 * 1024)
      for (const m of this.#memory) this.#file.write(m)
      this.#memory = []
    }
    return this.#file.write(piece)
  }

  #headersDone(): void {
    const headers = new HeaderBlock(this.#scanner.fields)
    this.#headers = headers
    try {
      this.#onHeaders?.(headers)
    } catch (e) {
      this.#callbackError ??= e
    }
  }

  #mustBeEnded(): void {
    if (this.#state !== 'ended') throw new Error(`MessageSpool: body not readable (${this.#state})`)
    if (this.#file !== undefined && !this.#fileComplete && this.#memory.length === 0) {
      throw new Error('MessageSpool: body file not complete')
    }
  }
}
