/**
 * Reads milter packets from a socket, one at a time, with a deadline per packet and bounded
 * memory: a length prefix over `maxPacket` ends the connection at once, without waiting for the
 * data, and the socket is paused while more than one packet's worth is buffered, so a filter
 * that floods us (a replaced body of any size) is slowed by TCP instead of filling our memory.
 */
import type { Socket } from 'node:net'
import { MilterError } from './errors.ts'

export interface Packet {
  readonly letter: string
  readonly data: Buffer
}

export interface ReadDeadline {
  readonly timeoutMs: number
  readonly signal?: AbortSignal | undefined
  /** Names the wait in the timeout error (`reply to SMFIC_BODYEOB`). */
  readonly waitingFor: string
}

export class PacketReader {
  readonly #socket: Socket
  readonly #maxPacket: number
  readonly #peer: string
  #chunks: Buffer[] = []
  #buffered = 0
  #failure: MilterError | undefined
  #wake: (() => void) | undefined

  constructor(socket: Socket, opts: { maxPacket: number; peer: string }) {
    this.#socket = socket
    this.#maxPacket = opts.maxPacket
    this.#peer = opts.peer
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk)
      this.#buffered += chunk.length
      if (this.#buffered > this.#maxPacket + 5) socket.pause()
      this.#check()
      this.#wake?.()
    })
    socket.on('error', (e) => this.fail(new MilterError('closed', `${this.#peer}: ${e.message}`, { cause: e })))
    socket.on('close', () => this.fail(new MilterError('closed', `${this.#peer} closed the connection`)))
  }

  /** Why the connection is unusable, once it is. */
  get failure(): MilterError | undefined {
    return this.#failure
  }

  fail(e: MilterError): void {
    this.#failure ??= e
    this.#socket.destroy()
    this.#wake?.()
  }

  /** The next packet; rejects with a MilterError, and the connection is then gone. */
  async next(deadline: ReadDeadline): Promise<Packet> {
    for (;;) {
      if (this.#failure !== undefined && this.#failure.code !== 'closed') throw this.#failure
      const packet = this.#take()
      if (packet !== undefined) return packet
      if (this.#failure !== undefined) throw this.#failure
      await this.#wait(deadline)
    }
  }

  /** A complete packet at the front; still after the peer closed, so its last reply counts. */
  #take(): Packet | undefined {
    if (this.#buffered < 4) return undefined
    const length = this.#peek(4).readUInt32BE(0)
    if (length < 1 || length > this.#maxPacket || this.#buffered < 4 + length) return undefined
    const whole = this.#consume(4 + length)
    if (this.#socket.isPaused() && this.#buffered <= this.#maxPacket + 5) this.#socket.resume()
    return { letter: whole.toString('latin1', 4, 5), data: whole.subarray(5) }
  }

  /** Refuses a bad length prefix as soon as its 4 octets are here. */
  #check(): void {
    if (this.#failure !== undefined || this.#buffered < 4) return
    const length = this.#peek(4).readUInt32BE(0)
    if (length < 1) this.fail(new MilterError('malformed', `${this.#peer} sent a packet of length 0`))
    else if (length > this.#maxPacket)
      this.fail(
        new MilterError('oversize', `${this.#peer} announced a packet of ${length} octets (limit ${this.#maxPacket})`),
      )
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0] as Buffer
    if (first.length >= n) return first.subarray(0, n)
    this.#chunks = [Buffer.concat(this.#chunks)]
    return (this.#chunks[0] as Buffer).subarray(0, n)
  }

  #consume(n: number): Buffer {
    const first = this.#chunks[0] as Buffer
    let out: Buffer
    if (first.length >= n) {
      out = first.subarray(0, n)
      if (first.length === n) this.#chunks.shift()
      else this.#chunks[0] = first.subarray(n)
    } else {
      const all = Buffer.concat(this.#chunks)
      out = all.subarray(0, n)
      this.#chunks = all.length > n ? [all.subarray(n)] : []
    }
    this.#buffered -= n
    this.#check()
    return out
  }

  #wait(d: ReadDeadline): Promise<void> {
    const { signal } = d
    if (signal?.aborted) {
      this.fail(aborted(signal, this.#peer))
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.#wake = undefined
        resolve()
      }
      const onAbort = () => {
        this.fail(aborted(signal, this.#peer))
        done()
      }
      const timer = setTimeout(() => {
        this.fail(new MilterError('timeout', `no ${d.waitingFor} from ${this.#peer} within ${d.timeoutMs} ms`))
        done()
      }, d.timeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#wake = done
    })
  }
}

export const aborted = (signal: AbortSignal | undefined, peer: string): MilterError => {
  const reason = signal?.reason
  const why = reason instanceof Error ? reason.message : String(reason ?? 'aborted')
  return new MilterError('aborted', `gave up on ${peer}: ${why}`, { cause: reason })
}
