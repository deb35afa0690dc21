/**
 * The temporary file behind a large message body: created on first use (directory mode 0700,
 * file mode 0600, exclusive create), written through a WriteStream with backpressure.
 *
 * Bytes written before the file is open wait in a list counted against highWaterMark.
 * An I/O error (disk full) is kept and surfaces from end(); drained() never hangs on it.
 * Security: `wx` refuses to follow or reuse an existing path; names are unguessable.
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { finished } from 'node:stream/promises'

/** `<time>.<pid>.<random>`: sortable, unique across processes, safe in any file system. */
export const spoolFileName = (): string => `${Date.now()}.${process.pid}.${randomBytes(8).toString('hex')}`

export class SpoolFile {
  readonly path: string
  readonly #highWaterMark: number
  #stream: WriteStream | undefined
  #pending: Buffer[] = []
  #pendingBytes = 0
  #error: Error | undefined
  readonly #opened: Promise<void>
  #removed: Promise<void> | undefined

  constructor(dir: string, highWaterMark: number) {
    this.path = join(dir, spoolFileName())
    this.#highWaterMark = highWaterMark
    this.#opened = this.#open(dir)
  }

  get error(): Error | undefined {
    return this.#error
  }

  /** Returns false when the caller should wait for drained(). */
  write(buf: Buffer): boolean {
    if (this.#error !== undefined || this.#removed !== undefined) return true // discarded; end() reports it
    if (this.#stream !== undefined) return this.#stream.write(buf)
    this.#pending.push(buf)
    this.#pendingBytes += buf.length
    return this.#pendingBytes < this.#highWaterMark
  }

  async drained(): Promise<void> {
    await this.#opened
    const s = this.#stream
    if (s === undefined || !s.writableNeedDrain || this.#error !== undefined) return
    await new Promise<void>((resolve) => {
      const done = (): void => {
        s.off('drain', done).off('close', done)
        resolve()
      }
      s.on('drain', done).on('close', done) // 'close' follows an error
    })
  }

  /** Flushes and closes the file; rejects with the first I/O error. */
  async end(): Promise<void> {
    await this.#opened
    if (this.#stream !== undefined && this.#error === undefined) {
      this.#stream.end()
      await finished(this.#stream).catch((e: unknown) => this.#fail(e))
    }
    if (this.#error !== undefined) throw this.#error
  }

  /** Stops writing and deletes the file; idempotent. */
  remove(): Promise<void> {
    this.#removed ??= (async () => {
      await this.#opened
      const s = this.#stream
      if (s === undefined) return // never opened: no file
      if (!s.closed) {
        const closed = new Promise<void>((resolve) => s.once('close', () => resolve()))
        s.destroy()
        await closed
      }
      await unlink(this.path).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e
      })
    })()
    return this.#removed
  }

  async #open(dir: string): Promise<void> {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 })
    } catch (e) {
      this.#fail(e)
      return
    }
    if (this.#removed !== undefined) return
    const s = createWriteStream(this.path, { flags: 'wx', mode: 0o600, highWaterMark: this.#highWaterMark })
    s.on('error', (e) => this.#fail(e))
    this.#stream = s
    for (const b of this.#pending) s.write(b)
    this.#pending = []
    this.#pendingBytes = 0
  }

  #fail(e: unknown): void {
    this.#error ??= e instanceof Error ? e : new Error(String(e))
    this.#pending = []
  }
}
