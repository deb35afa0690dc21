/**
 * Replies are collected and written once per pipelined group (RFC 2920 §3.1). A client that
 * does not read them cannot make the server buffer without bound: when the socket's buffer is
 * full, the writer waits for it to drain at most `stallMs`, then destroys the connection.
 */
import type { Duplex } from 'node:stream'
import { type Reply, renderReply } from '../protocol/reply.ts'

export class ReplyWriter {
  stream: Duplex
  readonly #stallMs: number
  readonly #onStall: () => void
  #out = ''
  #closed = false

  constructor(stream: Duplex, stallMs: number, onStall: () => void) {
    this.stream = stream
    this.#stallMs = stallMs
    this.#onStall = onStall
  }

  queue(r: Reply): void {
    if (!this.#closed) this.#out += renderReply(r)
  }

  /** No more replies after this (the session is closing). */
  close(): void {
    this.#closed = true
    this.#out = ''
  }

  async flush(): Promise<void> {
    const stream = this.stream
    if (this.#out === '' || stream.destroyed) return
    const out = this.#out
    this.#out = ''
    if (!stream.write(out)) await this.#drain(stream)
  }

  #drain(stream: Duplex): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        stream.off('drain', done)
        stream.off('close', done)
        resolve()
      }
      const timer = setTimeout(() => {
        this.#onStall()
        stream.destroy()
        done()
      }, this.#stallMs)
      stream.once('drain', done)
      stream.once('close', done)
    })
  }
}
