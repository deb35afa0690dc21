/**
 * A line-protocol client over one socket (spamd, clamd, Postfix policy delegation, a
 * memcache-like text protocol): send a line, read a line with a deadline. Lines end with LF
 * (a CR before it is dropped); a line longer than `maxLineLength` ends the connection, and at
 * most `maxQueuedLines` unread lines are buffered before the socket is paused, so a peer cannot
 * grow our memory.
 *
 * A read that times out or is aborted destroys the connection: a late answer would otherwise be
 * read as the answer to the next request.
 * Security: `send()` refuses a line containing CR or LF, so data from a client cannot smuggle a
 * second command to the peer.
 */
import type { Socket } from 'node:net'
import { NetError } from './connect.ts'

export interface LineConnectionOptions {
  /** Longest line accepted, without its line ending, in bytes (default 8,192). */
  readonly maxLineLength?: number
  /** Unread lines kept before reading from the socket pauses (default 1,000). */
  readonly maxQueuedLines?: number
  /** Written after each line by `send()` (default CRLF). */
  readonly lineEnding?: '\r\n' | '\n'
  readonly encoding?: 'utf8' | 'latin1'
  /** How the peer is named in errors (default its address). */
  readonly peer?: string
}

export interface ReadOptions {
  readonly timeoutMs: number
  /** Aborting destroys the connection and rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined
}

const LF = 0x0a
const CR = 0x0d
const empty = Buffer.alloc(0)

export class LineConnection {
  readonly socket: Socket
  readonly #maxLine: number
  readonly #maxQueued: number
  readonly #ending: string
  readonly #encoding: 'utf8' | 'latin1'
  readonly #peer: string
  #partial: Buffer = empty
  readonly #lines: string[] = []
  #failure: Error | undefined
  #waiter: (() => void) | undefined

  constructor(socket: Socket, opts: LineConnectionOptions = {}) {
    this.socket = socket
    this.#maxLine = opts.maxLineLength ?? 8192
    this.#maxQueued = opts.maxQueuedLines ?? 1000
    this.#ending = opts.lineEnding ?? '\r\n'
    this.#encoding = opts.encoding ?? 'utf8'
    this.#peer = opts.peer ?? `${socket.remoteAddress ?? socket.remotePort ?? 'peer'}`
    socket.setNoDelay?.(true)
    socket.on('data', this.#onData)
    socket.on('error', (e: NodeJS.ErrnoException) =>
      this.#fail(new NetError(e.code ?? 'EIO', `${this.#peer}: ${e.message}`, { cause: e })),
    )
    socket.on('close', () => this.#fail(new NetError('ECONNRESET', `${this.#peer} closed the connection`)))
  }

  get isOpen(): boolean {
    return this.#failure === undefined && !this.socket.destroyed
  }

  /** Writes `line` and the line ending; resolves once the socket took it. */
  send(line: string): Promise<void> {
    if (line.includes('\r') || line.includes('\n'))
      return Promise.reject(new NetError('EINVAL', `a line for ${this.#peer} cannot contain CR or LF`))
    return this.write(line + this.#ending)
  }

  /** Writes bytes as they are (a message body, a length-prefixed chunk). */
  write(data: string | Uint8Array): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    return new Promise((resolve, reject) => {
      this.socket.write(data, (e) => (e ? reject(this.#failure ?? e) : resolve()))
    })
  }

  /** The next line, without its line ending. */
  async readLine(opts: ReadOptions): Promise<string> {
    if (this.#waiter !== undefined) throw new Error(`readLine from ${this.#peer} while another read waits`)
    if (this.#lines.length === 0 && this.#failure === undefined) await this.#wait(opts)
    const line = this.#lines.shift()
    if (line === undefined) throw this.#failure ?? new NetError('ECONNRESET', `${this.#peer} closed the connection`)
    if (this.socket.isPaused() && this.#lines.length < this.#maxQueued) this.socket.resume()
    return line
  }

  /** Sends a line and reads the line that answers it. */
  async request(line: string, opts: ReadOptions): Promise<string> {
    await this.send(line)
    return this.readLine(opts)
  }

  /** Ends the connection politely; destroys it if the peer has not closed within `graceMs`. */
  async close(graceMs = 1000): Promise<void> {
    if (this.socket.destroyed) return
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()))
    this.socket.end()
    const timer = setTimeout(() => this.socket.destroy(), graceMs)
    await closed
    clearTimeout(timer)
  }

  destroy(): void {
    this.socket.destroy()
  }

  #wait(opts: ReadOptions): Promise<void> {
    const { signal } = opts
    if (signal?.aborted) {
      this.#giveUp(signal.reason)
      return Promise.reject(signal.reason)
    }
    return new Promise<void>((resolve, reject) => {
      const stop = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.#waiter = undefined
      }
      const onAbort = () => {
        stop()
        this.#giveUp(signal?.reason)
        reject(signal?.reason)
      }
      const timer = setTimeout(() => {
        stop()
        const err = new NetError('ETIMEDOUT', `no line from ${this.#peer} within ${opts.timeoutMs} ms`)
        this.#giveUp(err)
        reject(err)
      }, opts.timeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiter = () => {
        stop()
        resolve()
      }
    })
  }

  /** A read gave up: what arrives later would answer the wrong request. */
  #giveUp(reason: unknown): void {
    this.#failure ??= reason instanceof Error ? reason : new NetError('ECANCELED', String(reason))
    this.socket.destroy()
  }

  #fail(e: Error): void {
    this.#failure ??= e
    this.socket.destroy()
    this.#waiter?.()
  }

  readonly #onData = (chunk: Buffer): void => {
    let start = 0
    for (let nl = chunk.indexOf(LF); nl !== -1; nl = chunk.indexOf(LF, start)) {
      const piece = chunk.subarray(start, nl)
      const whole = this.#partial.length === 0 ? piece : Buffer.concat([this.#partial, piece])
      this.#partial = empty
      const end = whole.length > 0 && whole[whole.length - 1] === CR ? whole.length - 1 : whole.length
      if (end > this.#maxLine) {
        this.#tooLong()
        return
      }
      this.#lines.push(whole.toString(this.#encoding, 0, end))
      start = nl + 1
    }
    if (start < chunk.length) {
      // One more byte than the limit may be the CR of a line that is just long enough.
      if (this.#partial.length + chunk.length - start > this.#maxLine + 1) {
        this.#tooLong()
        return
      }
      this.#partial = Buffer.concat([this.#partial, chunk.subarray(start)])
    }
    if (this.#lines.length >= this.#maxQueued) this.socket.pause()
    if (this.#lines.length > 0) this.#waiter?.()
  }

  #tooLong(): void {
    this.#fail(new NetError('ELINETOOLONG', `${this.#peer} sent a line longer than ${this.#maxLine} bytes`))
  }
}
