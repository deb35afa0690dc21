/**
 * One query to one server: over UDP from a fresh socket (a new random source port per query, on
 * top of the random id: RFC 5452 §9.2), or over TCP with the two-octet length prefix of RFC 1035
 * §4.2.2 (RFC 7766). Both stop at their deadline, at the caller's signal, or at an answer larger
 * than the configured limit, and always release their socket.
 * Security: the UDP socket is connected, so the kernel drops datagrams from other addresses, and
 * the source is checked again; datagrams that do not answer our query are counted and ignored.
 */
import { createSocket, type RemoteInfo } from 'node:dgram'
import { connect } from 'node:net'
import { normalizeIp } from '../net/ip.ts'
import type { Response } from './message.ts'

export interface DnsServer {
  readonly address: string
  readonly port: number
}

export const serverText = (s: DnsServer): string =>
  s.address.includes(':') ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`

export type Exchange =
  | { readonly status: 'answer'; readonly response: Extract<Response, { status: 'ok' }> }
  | { readonly status: 'timeout' }
  | { readonly status: 'error'; readonly detail: string }

export interface ExchangeRequest {
  readonly server: DnsServer
  readonly query: Buffer
  /** Decides whether a message answers the query (parseResponse bound to its id and question). */
  readonly read: (message: Buffer) => Response
  readonly timeoutMs: number
  readonly maxAnswerSize: number
  readonly signal: AbortSignal | undefined
  /** Called for each datagram that is not the answer (forged, late or misdirected). */
  readonly onIgnored: () => void
}

type Settle = (outcome: Exchange | { readonly status: 'aborted'; readonly reason: unknown }) => void

/** Timer, signal and cleanup shared by both transports; `start` gets the function that ends the exchange. */
function exchange(req: ExchangeRequest, start: (settle: Settle) => () => void): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    if (req.signal?.aborted) {
      reject(req.signal.reason)
      return
    }
    let release: (() => void) | undefined
    let done = false
    const settle: Settle = (outcome) => {
      if (done) return
      done = true
      clearTimeout(timer)
      req.signal?.removeEventListener('abort', onAbort)
      release?.()
      if (outcome.status === 'aborted') reject(outcome.reason)
      else resolve(outcome)
    }
    const onAbort = () => settle({ status: 'aborted', reason: req.signal?.reason })
    const timer = setTimeout(() => settle({ status: 'timeout' }), Math.max(1, req.timeoutMs))
    req.signal?.addEventListener('abort', onAbort, { once: true })
    release = start(settle)
    if (done) release()
  })
}

function accept(req: ExchangeRequest, message: Buffer, settle: Settle): boolean {
  if (message.length > req.maxAnswerSize) {
    settle({ status: 'error', detail: `answer of ${message.length} octets exceeds dns_answer_size_limit` })
    return true
  }
  const response = req.read(message)
  if (response.status === 'ignore') return false
  settle(response.status === 'ok' ? { status: 'answer', response } : { status: 'error', detail: response.detail })
  return true
}

export function udpExchange(req: ExchangeRequest): Promise<Exchange> {
  const expected = normalizeIp(req.server.address)
  return exchange(req, (settle) => {
    const socket = createSocket(req.server.address.includes(':') ? 'udp6' : 'udp4')
    socket.on('error', (e) => settle({ status: 'error', detail: `${e.message} (${serverText(req.server)})` }))
    socket.on('message', (message: Buffer, from: RemoteInfo) => {
      const fromServer = normalizeIp(from.address) === expected && from.port === req.server.port
      if (!fromServer || !accept(req, message, settle)) req.onIgnored()
    })
    socket.connect(req.server.port, req.server.address, () => {
      socket.send(req.query, (e) => {
        if (e) settle({ status: 'error', detail: `${e.message} (${serverText(req.server)})` })
      })
    })
    return () => socket.close()
  })
}

export function tcpExchange(req: ExchangeRequest): Promise<Exchange> {
  return exchange(req, (settle) => {
    const socket = connect({ host: req.server.address, port: req.server.port, noDelay: true })
    const chunks: Buffer[] = []
    let received = 0
    const fail = (detail: string) => settle({ status: 'error', detail: `${detail} (${serverText(req.server)}, TCP)` })
    socket.on('error', (e) => fail(e.message))
    socket.on('end', () => fail('connection closed before the whole answer'))
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      received += chunk.length
      if (received < 2) return
      const all = chunks.length === 1 ? chunk : Buffer.concat(chunks, received)
      const length = all.readUInt16BE(0)
      if (length > req.maxAnswerSize) {
        fail(`answer of ${length} octets exceeds dns_answer_size_limit`)
        return
      }
      if (received < 2 + length) {
        chunks.splice(0, chunks.length, all)
        return
      }
      // Over TCP nobody else can inject: an answer to another question is a broken server.
      if (!accept(req, all.subarray(2, 2 + length), settle)) fail('answer does not match the query')
    })
    const prefix = Buffer.alloc(2)
    prefix.writeUInt16BE(req.query.length)
    socket.write(Buffer.concat([prefix, req.query]))
    return () => socket.destroy()
  })
}
