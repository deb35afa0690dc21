/**
 * A session's deadlines, one timer at a time.
 *
 * Commands: a per-request deadline (Postfix smtpd_per_request_deadline). It starts when the
 * server is ready for a command and is not extended by the bytes of a partial line, so a
 * client sending one byte at a time cannot hold the session (slowloris).
 * Content: `dataMs`, plus 1/minDataRate seconds for every octet received, never more than
 * `dataMs` ahead (Postfix smtpd_min_data_rate); with minDataRate 0 a plain idle timeout.
 */
import type { Timeouts } from './settings.ts'

export type Expiry = 'idle' | 'slow'

export class SessionClock {
  readonly #timeouts: Timeouts
  readonly #onExpire: (why: Expiry) => void
  // One timer, re-armed only when it fires early: waiting for the next command does not cost a
  // clearTimeout/setTimeout pair per command (the hot path of a busy server).
  #timer: NodeJS.Timeout | undefined
  #armedAt = 0
  #waiting = false
  #inContent = false
  #deadline = 0
  #commandDeadline = 0
  #dataDeadline = 0
  #dataBytes = 0

  constructor(timeouts: Timeouts, onExpire: (why: Expiry) => void) {
    this.#timeouts = timeouts
    this.#onExpire = onExpire
  }

  /** The session waits for input; `partialLine` is true when part of a command line is buffered. */
  wait(inContent: boolean, partialLine: boolean): void {
    if (inContent) {
      if (this.#dataDeadline === 0) this.#startContent()
      this.#deadline = this.#dataDeadline
    } else {
      if (this.#commandDeadline === 0 || !partialLine) this.#commandDeadline = Date.now() + this.#timeouts.commandMs
      this.#deadline = this.#commandDeadline
    }
    this.#inContent = inContent
    this.#waiting = true
    if (this.#timer === undefined || this.#armedAt > this.#deadline) this.#arm(this.#deadline)
  }

  /** Input is being handled: no deadline runs. */
  stop(): void {
    this.#waiting = false
  }

  /** The session is over: no timer may outlive it. */
  dispose(): void {
    this.#waiting = false
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
    const now = Date.now()
    const credited = rate > 0 ? this.#dataDeadline + (n / rate) * 1000 : now + this.#timeouts.dataMs
    // As in Postfix, the credit never reaches further than dataMs from now: a client that
    // sent much quickly and then stalls is still cut off dataMs after its last octet.
    this.#dataDeadline = Math.min(credited, now + this.#timeouts.dataMs)
  }

  contentDone(): void {
    this.#dataDeadline = 0
  }

  #startContent(): void {
    this.#dataBytes = 0
    this.#dataDeadline = Date.now() + this.#timeouts.dataMs
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#armedAt = at
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - Date.now()))
  }

  #fire(): void {
    this.#timer = undefined
    if (!this.#waiting) return
    // Content may have arrived since the deadline was computed: it moves with every octet.
    if (this.#inContent) this.#deadline = this.#dataDeadline
    if (Date.now() < this.#deadline) {
      this.#arm(this.#deadline)
      return
    }
    const slow = this.#inContent && this.#timeouts.minDataRate > 0 && this.#dataBytes > 0
    this.#onExpire(slow ? 'slow' : 'idle')
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
