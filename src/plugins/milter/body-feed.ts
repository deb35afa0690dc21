/**
 * The replaced body on its way from the milter's SMFIR_REPLBODY packets to msg.replaceBody():
 * an async iterable fed one chunk at a time. push() settles when the spool took the chunk, so
 * the next packet is read only then (memory: one packet). The body is swapped in only when
 * end() is called after the milter's final accept or continue; fail() makes replaceBody reject
 * and the old body stays.
 */
export class BodyFeed {
  readonly #chunks: Buffer[] = []
  #ended = false
  #error: Error | undefined
  /** The consumer returned or threw: nobody will take more. */
  #stopped = false
  #wakeConsumer: (() => void) | undefined
  #wakeProducer: (() => void) | undefined

  async push(chunk: Buffer): Promise<void> {
    if (this.#stopped) throw new Error('the replaced body is no longer being written')
    this.#chunks.push(chunk)
    this.#wake('consumer')
    while (this.#chunks.length > 0 && !this.#stopped) await new Promise<void>((r) => (this.#wakeProducer = r))
    if (this.#chunks.length > 0) throw new Error('the replaced body is no longer being written')
  }

  end(): void {
    this.#ended = true
    this.#wake('consumer')
  }

  fail(e: Error): void {
    this.#error ??= e
    this.#wake('consumer')
  }

  async *chunks(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        if (this.#error !== undefined) throw this.#error
        const chunk = this.#chunks.shift()
        if (chunk !== undefined) {
          this.#wake('producer')
          yield chunk
          continue
        }
        if (this.#ended) return
        await new Promise<void>((r) => (this.#wakeConsumer = r))
      }
    } finally {
      this.#stopped = true
      this.#wake('producer')
    }
  }

  #wake(who: 'consumer' | 'producer'): void {
    const wake = who === 'consumer' ? this.#wakeConsumer : this.#wakeProducer
    if (who === 'consumer') this.#wakeConsumer = undefined
    else this.#wakeProducer = undefined
    wake?.()
  }
}
