/**
 * One request and its reply over a fresh connection to a scanning daemon (spamd, clamd, a
 * Sophie-style socket): the request's body is streamed with back-pressure (a slow daemon slows
 * the reading of the spool, memory stays bounded), the reply is collected up to a bound, and one
 * deadline covers connect, send and receive. Every way it can go wrong ends in a ScannerError
 * whose `failure` says which, so that the plugin applies its declared failure policy.
 *
 * A daemon may answer before it has read everything (clamd's "size limit exceeded" closes the
 * connection mid-stream): the reply counts, the write error that follows does not.
 * Security: the reply is bounded (`maxReplyBytes`); a daemon that accepts and never answers
 * costs one socket until the deadline.
 */
import { once } from 'node:events'
import type { Socket } from 'node:net'
import type { ConnectOptions, ConnectTarget } from '../net/index.ts'
import { describeTarget } from '../net/index.ts'

export type ScannerFailure =
  /** Could not connect (refused, no socket file, no route). */
  | 'unreachable'
  /** The deadline passed. */
  | 'timeout'
  /** The caller's signal aborted (the hook's deadline, the client went away). */
  | 'aborted'
  /** The connection broke or closed before a complete reply. */
  | 'closed'
  /** The reply is not what the protocol says. */
  | 'malformed'
  /** The reply is larger than allowed. */
  | 'oversized'
  /** The daemon answered with an error of its own (clamd "... ERROR", spamd EX_* other than EX_OK). */
  | 'refused'

export class ScannerError extends Error {
  readonly failure: ScannerFailure

  constructor(failure: ScannerFailure, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ScannerError'
    this.failure = failure
  }
}

export type Connector = (target: ConnectTarget, opts: ConnectOptions) => Promise<Socket>

export interface ExchangeOptions {
  readonly connect: Connector
  readonly target: ConnectTarget
  /** For connect, send and receive together. */
  readonly timeoutMs: number
  readonly signal?: AbortSignal | undefined
  readonly maxReplyBytes: number
  /** Writes the request with back-pressure (see `writeAll`). */
  write(socket: Socket, signal: AbortSignal): Promise<void>
  /**
   * The length of the complete reply at the start of `received`, or undefined while more is
   * needed; `ended` is true once the daemon closed its side (then undefined is an error).
   */
  complete(received: Buffer, ended: boolean): number | undefined
}

/** Sends the request and resolves with the complete reply. */
export async function exchange(o: ExchangeOptions): Promise<Buffer> {
  const peer = describeTarget(o.target)
  const deadline = AbortSignal.timeout(o.timeoutMs)
  const signal = o.signal === undefined ? deadline : AbortSignal.any([o.signal, deadline])
  const abortError = () =>
    deadline.aborted
      ? new ScannerError('timeout', `${peer}: no complete reply within ${o.timeoutMs} ms`)
      : new ScannerError('aborted', `${peer}: ${describe(o.signal?.reason) || 'aborted'}`)
  if (signal.aborted) throw abortError()
  let socket: Socket
  try {
    socket = await o.connect(o.target, { timeoutMs: o.timeoutMs, signal })
  } catch (e) {
    if (signal.aborted) throw abortError()
    throw new ScannerError('unreachable', `${peer}: ${describe(e)}`, { cause: e })
  }
  return new Promise<Buffer>((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0)
    let settled = false
    const finish = (err: Error | undefined, reply?: Buffer) => {
      if (settled) return
      settled = true
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      if (err === undefined) resolve(reply as Buffer)
      else reject(err)
    }
    const check = (ended: boolean, why = 'closed the connection before a complete reply') => {
      let length: number | undefined
      try {
        length = o.complete(received, ended)
      } catch (e) {
        return finish(e instanceof ScannerError ? e : new ScannerError('malformed', `${peer}: ${describe(e)}`))
      }
      if (length !== undefined) return finish(undefined, received.subarray(0, length))
      if (ended) finish(new ScannerError('closed', `${peer} ${why}`))
    }
    const onAbort = () => finish(abortError())
    signal.addEventListener('abort', onAbort, { once: true })
    socket.on('data', (d: Buffer) => {
      if (received.length + d.length > o.maxReplyBytes)
        return finish(new ScannerError('oversized', `${peer}: reply larger than ${o.maxReplyBytes} bytes`))
      received = received.length === 0 ? d : Buffer.concat([received, d])
      check(false)
    })
    socket.on('end', () => check(true))
    // A reset after a complete reply (we were still writing) leaves the reply standing.
    socket.on('error', (e) => check(true, `broke the connection: ${e.message}`))
    socket.on('close', () => check(true))
    o.write(socket, signal).then(
      () => {
        if (!settled) socket.end()
      },
      // A daemon that stops reading may have answered why (or will, before it closes): the
      // reply, the end of the connection or the deadline decides, not the write error.
      () => {},
    )
  })
}

/**
 * Writes each piece of `source` (after `frame`, which may wrap it: clamd's length prefix) and
 * waits for the socket to drain whenever it is full, so a slow daemon slows the reader.
 */
export async function writeAll(
  socket: Socket,
  source: AsyncIterable<Buffer | string>,
  signal: AbortSignal,
  frame: (chunk: Buffer) => readonly Buffer[] = (chunk) => [chunk],
): Promise<void> {
  for await (const piece of source) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece) : piece
    let full = false
    for (const part of frame(chunk)) full = !socket.write(part) || full
    if (full) await drained(socket, signal)
  }
}

/** Writes one buffer and waits for room if the socket is full. */
export async function writeOne(socket: Socket, data: Buffer | string, signal: AbortSignal): Promise<void> {
  if (!socket.write(data)) await drained(socket, signal)
}

async function drained(socket: Socket, signal: AbortSignal): Promise<void> {
  if (socket.destroyed) throw new Error('socket closed')
  const ac = new AbortController()
  const stop = AbortSignal.any([signal, ac.signal])
  try {
    await Promise.race([once(socket, 'drain', { signal: stop }), once(socket, 'close', { signal: stop })])
  } finally {
    ac.abort()
  }
  if (socket.destroyed) throw new Error('socket closed')
}

/** Daemon output for a log line: control and 8-bit characters escaped, cut at `max` characters. */
export const printable = (s: string, max = 200): string =>
  s.slice(0, max).replace(/[\x00-\x1f\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)

const describe = (e: unknown): string => (e instanceof Error ? e.message : e === undefined ? '' : String(e))
