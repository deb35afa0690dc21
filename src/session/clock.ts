/**
 * A session's deadlines, one timer at a time.
 *
 * Commands: a per-request deadline (Postfix smtpd_per_request_deadline). It starts when the
 * server is ready for a command and is not extended by the bytes of a partial line, so a
 * client sending one byte at a time cannot hold the session (slowloris).
 * Content: `dataMs`, plus 1/minDataRate seconds for every octet received (Postfix
 * smtpd_min_data_rate); with minDataRate 0 it is a plain idle timeout.
 */
import type { Timeouts } from './settings.ts'

export type Expiry = 'idle' | 'slow'

export class SessionClock {
  readonly #timeouts: Timeouts
  readonly #onExpire: (why: Expiry) => void
  #timer: NodeJS.Timeout | undefined
  #commandDeadline = 0
  #dataDeadline = 0
  #dataBytes = 0

  constructor(timeouts: Timeouts, onExpire: (why: Expiry) => void) {
    this.#timeouts = timeouts
    this.#onExpire = onExpire
  }

  /** The session waits for input; `partialLine` is true when part of a command line is buffered. */
  wait(inContent: boolean, partialLine: boolean): void {
    this.stop()
    if (inContent) {
      if (this.#dataDeadline === 0) this.#startContent()
      const wait = Math.max(0, Math.min(this.#dataDeadline - Date.now(), this.#timeouts.dataMs))
      this.#timer = setTimeout(() => this.#contentExpired(inContent), wait)
      return
    }
    if (this.#commandDeadline === 0 || !partialLine) this.#commandDeadline = Date.now() + this.#timeouts.commandMs
    this.#timer = setTimeout(() => this.#onExpire('idle'), Math.max(0, this.#commandDeadline - Date.now()))
  }

  /** Input is being handled: no deadline runs. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** A whole command line arrived: the next one gets a fresh deadline. */
  commandDone(): void {
    this.#commandDeadline = 0
  }

  /** Octets of message content arrived. */
  content(n: number): void {
    if (this.#dataDeadline === 0) this.#startContent()
    this.#dataBytes += n
    const rate = this.#timeouts.minDataRate
    if (rate > 0) this.#dataDeadline += (n / rate) * 1000
    else this.#dataDeadline = Date.now() + this.#timeouts.dataMs
  }

  contentDone(): void {
    this.#dataDeadline = 0
  }

  #startContent(): void {
    this.#dataBytes = 0
    this.#dataDeadline = Date.now() + this.#timeouts.dataMs
  }

  #contentExpired(inContent: boolean): void {
    if (Date.now() < this.#dataDeadline) {
      this.wait(inContent, false)
      return
    }
    this.#onExpire(this.#timeouts.minDataRate > 0 && this.#dataBytes > 0 ? 'slow' : 'idle')
  }
}

/** Waits `ms`, or less if the session ends first; leaves no listener behind. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
