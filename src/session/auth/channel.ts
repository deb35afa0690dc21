/**
 * The wire side of a SASL exchange (RFC 4954 §4): a challenge goes out as `334 <base64>`, the
 * client's response line comes back decoded. The core's mechanisms and the backends that run
 * their own (`authSasl`) use the same channel, which closes when the exchange is over: a backend
 * that goes on talking after its hook returned (timed out) cannot write into the next command.
 */
import type { ChannelBindingType, SaslChannel } from '../../host/auth.ts'
import { type Reply, reply } from '../../protocol/reply.ts'
import { decodeBase64Strict } from '../../protocol/sasl.ts'
import { Replies } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'

/** Why an exchange ended before its verdict: the reply that says so, or `gone` (the session ended). */
export type ExchangeEnd = Reply | 'gone'

/** RFC 9266 §2: the label of the tls-exporter channel binding, 32 bytes, no context. */
const exporterLabel = 'EXPORTER-Channel-Binding'

/** An initial response (`AUTH MECH <response>`) or a response line, decoded; `*` cancels. */
export function decodeResponse(text: string): Buffer | Reply {
  if (text === '*') return Replies.authCancelled
  return decodeBase64Strict(text) ?? Replies.authBadBase64
}

export class AuthChannel implements SaslChannel {
  readonly mechanism: string
  readonly initialResponse: Buffer | undefined
  /** Set when the exchange ended early; the core then answers with it. */
  ended: ExchangeEnd | undefined
  /** Whether any challenge went out: a backend that talked cannot hand the exchange on. */
  used = false
  readonly #s: SessionCore
  #busy = false
  #closed = false

  constructor(s: SessionCore, mechanism: string, initialResponse: Buffer | undefined) {
    this.#s = s
    this.mechanism = mechanism
    this.initialResponse = initialResponse
  }

  async challenge(data: Uint8Array | string): Promise<Buffer | undefined> {
    if (this.#closed || this.ended !== undefined) return undefined
    // One challenge at a time: two would put two 334 lines before one response.
    if (this.#busy) throw new Error('challenge() called while another challenge waits for its response')
    this.#busy = true
    this.used = true
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data)
      await this.#s.sendNow(reply(334, undefined, bytes.toString('base64')))
      const line = await this.#s.readLine(this.#s.settings.limits.authLine)
      if (line === undefined) this.ended = 'gone'
      else if (typeof line !== 'string') this.ended = line
      else {
        const decoded = decodeResponse(line)
        if (Buffer.isBuffer(decoded)) return this.#closed ? undefined : decoded
        this.ended = decoded
      }
      return undefined
    } finally {
      this.#busy = false
    }
  }

  channelBinding(type: ChannelBindingType): Buffer | undefined {
    if (type !== 'tls-exporter') return undefined
    return this.#s.tlsExporter(exporterLabel, 32)
  }

  /**
   * The exchange is over: later challenges write nothing, and a response still awaited (the
   * backend timed out meanwhile) is not: the next line is the client's next command.
   */
  close(): void {
    this.#closed = true
    if (this.#busy) this.#s.cancelReadLine()
  }
}
