/**
 * The outbound connection's transport: a TCP or Unix socket (later TLS), command lines out,
 * whole replies in (multi-line included, RFC 5321 §4.2), each read bounded by a timeout.
 *
 * It knows no SMTP verbs. A timeout, a drop or a malformed reply destroys the socket: after
 * any of them the dialogue's state is unknown, so the connection is never reused.
 * Security: command lines with CR, LF or NUL are refused (no command injection from envelope
 * data); reply lines and reply counts are bounded; bytes the server sends ahead of the TLS
 * handshake are refused (STARTTLS injection, CVE-2011-0411, in the client direction).
 */
import { connect as netConnect, type Socket } from 'node:net'
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls'
import type { EnhancedCode } from '../../protocol/reply.ts'
import { OutboundError } from './errors.ts'

export interface RemoteReply {
  readonly code: number
  /** RFC 2034 enhanced code, when the server sent one on the first line. */
  readonly enhanced: EnhancedCode | undefined
  /** Text of each line, without code and enhanced code. */
  readonly lines: readonly string[]
}

/** Where the next hop listens: host and port, or a Unix socket path. */
export type Target = { readonly host: string; readonly port: number } | { readonly path: string }

export const describeTarget = (t: Target): string => ('path' in t ? `unix:${t.path}` : `${t.host}:${t.port}`)

const MAX_LINE = 4096 // RFC 5321 §4.5.3.1.5 says 512; real servers send longer texts
const MAX_LINES = 200

export class Wire {
  #socket: Socket | TLSSocket
  #buffer: Buffer = Buffer.alloc(0)
  #lines: string[] = []
  #replies: RemoteReply[] = []
  #waiter: (() => void) | undefined
  #failure: OutboundError | undefined
  readonly target: Target

  private constructor(socket: Socket, target: Target) {
    this.#socket = socket
    this.target = target
    this.#attach(socket)
  }

  static open(target: Target, timeoutMs: number): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const socket =
        'path' in target ? netConnect({ path: target.path }) : netConnect({ host: target.host, port: target.port })
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new OutboundError('timeout', 'connect', `connect to ${describeTarget(target)} timed out`))
      }, timeoutMs)
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.off('error', onError)
        resolve(new Wire(socket, target))
      })
      const onError = (e: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        const kind = e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? 'refused' : 'dropped'
        reject(new OutboundError(kind, 'connect', `connect to ${describeTarget(target)}: ${e.code ?? e.message}`))
      }
      socket.once('error', onError)
    })
  }

  get alive(): boolean {
    return this.#failure === undefined && !this.#socket.destroyed
  }

  get encrypted(): boolean {
    return 'encrypted' in this.#socket && this.#socket.encrypted === true
  }

  #attach(socket: Socket): void {
    socket.on('data', this.#onData)
    socket.on('error', (e) => this.#fail(new OutboundError('dropped', 'read', `connection error: ${e.message}`)))
    socket.on('close', () => this.#fail(new OutboundError('dropped', 'read', 'connection closed by the next hop')))
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    for (;;) {
      const lf = this.#buffer.indexOf(0x0a)
      if (lf < 0) {
        if (this.#buffer.length > MAX_LINE) this.#fail(new OutboundError('protocol', 'read', 'reply line too long'))
        break
      }
      const end = lf > 0 && this.#buffer[lf - 1] === 0x0d ? lf - 1 : lf
      const line = this.#buffer.subarray(0, end).toString('utf8')
      this.#buffer = this.#buffer.subarray(lf + 1)
      if (line.length > MAX_LINE) {
        this.#fail(new OutboundError('protocol', 'read', 'reply line too long'))
        return
      }
      this.#lines.push(line)
      if (!/^[2-5]\d\d([ -]|$)/.test(line) || this.#lines.length > MAX_LINES) {
        this.#fail(new OutboundError('protocol', 'read', `malformed reply: ${JSON.stringify(line.slice(0, 80))}`))
        return
      }
      if (line.charAt(3) !== '-') {
        this.#replies.push(parseReply(this.#lines))
        this.#lines = []
      }
    }
    this.#wake()
  }

  #wake(): void {
    const w = this.#waiter
    this.#waiter = undefined
    w?.()
  }

  #fail(e: OutboundError): void {
    if (this.#failure === undefined) this.#failure = e
    this.#socket.destroy()
    this.#wake()
  }

  /** The next reply; a timeout or a dropped connection throws an OutboundError. */
  async read(step: string, timeoutMs: number): Promise<RemoteReply> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const r = this.#replies.shift()
      if (r !== undefined) return r
      if (this.#failure !== undefined) throw this.#failure.at(step)
      const left = deadline - Date.now()
      if (left <= 0) {
        const err = new OutboundError('timeout', step, `no reply to ${step} within ${timeoutMs} ms`)
        this.#fail(err)
        throw err
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.#waiter = () => {
          clearTimeout(t)
          resolve()
        }
      })
    }
  }

  /** Writes command lines (CRLF added); refuses CR, LF and NUL inside a line. */
  command(...lines: string[]): void {
    for (const l of lines)
      if (/[\r\n\0]/.test(l)) throw new OutboundError('protocol', 'command', 'command line holds CR, LF or NUL')
    this.#checkAlive('write')
    this.#socket.write(lines.map((l) => `${l}\r\n`).join(''))
  }

  /** Writes raw bytes, waiting for the socket to drain (backpressure) within timeoutMs. */
  async writeRaw(data: Buffer, step: string, timeoutMs: number): Promise<void> {
    this.#checkAlive(step)
    if (this.#socket.write(data)) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup()
        this.#fail(new OutboundError('timeout', step, `next hop stopped reading for ${timeoutMs} ms`))
        reject(this.#failure)
      }, timeoutMs)
      const onDrain = () => {
        cleanup()
        resolve()
      }
      const onClose = () => {
        cleanup()
        reject((this.#failure ?? new OutboundError('dropped', step, 'connection closed')).at(step))
      }
      const cleanup = () => {
        clearTimeout(timer)
        this.#socket.off('drain', onDrain)
        this.#socket.off('close', onClose)
      }
      this.#socket.on('drain', onDrain)
      this.#socket.on('close', onClose)
    })
  }

  #checkAlive(step: string): void {
    if (this.#failure !== undefined) throw this.#failure.at(step)
    if (this.#socket.destroyed) throw new OutboundError('dropped', step, 'connection closed')
  }

  /** TLS on the open socket after the server's 220 to STARTTLS (RFC 3207). */
  async startTls(options: ConnectionOptions, timeoutMs: number): Promise<void> {
    if (this.#buffer.length > 0 || this.#replies.length > 0 || this.#lines.length > 0)
      throw new OutboundError('tls', 'starttls', 'next hop sent data ahead of the TLS handshake')
    const plain = this.#socket
    plain.off('data', this.#onData)
    plain.removeAllListeners('close')
    plain.removeAllListeners('error')
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ ...options, socket: plain })
      const timer = setTimeout(() => {
        s.destroy()
        reject(new OutboundError('timeout', 'starttls', `TLS handshake timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      s.once('secureConnect', () => {
        clearTimeout(timer)
        s.off('error', onError)
        resolve(s)
      })
      const onError = (e: Error) => {
        clearTimeout(timer)
        s.destroy()
        reject(new OutboundError('tls', 'starttls', `TLS handshake failed: ${e.message}`))
      }
      s.once('error', onError)
    })
    this.#socket = secure
    this.#attach(secure)
  }

  /** Sends QUIT and closes, without waiting long for the answer. */
  async quit(timeoutMs = 2000): Promise<void> {
    if (this.alive) {
      try {
        this.command('QUIT')
        await this.read('QUIT', timeoutMs)
      } catch {
        // The hop is going away anyway.
      }
    }
    this.destroy()
  }

  destroy(): void {
    if (this.#failure === undefined) this.#failure = new OutboundError('dropped', 'closed', 'connection closed')
    this.#socket.destroy()
    this.#wake()
  }
}

function parseReply(lines: readonly string[]): RemoteReply {
  const code = Number(lines[0]?.slice(0, 3))
  const texts = lines.map((l) => l.slice(4))
  const m = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/.exec(texts[0] ?? '')
  const enhanced =
    m !== null && m[1] === String(code).charAt(0) ? (`${m[1]}.${m[2]}.${m[3]}` as EnhancedCode) : undefined
  const strip = (t: string) =>
    enhanced !== undefined && t.startsWith(enhanced) ? t.slice(enhanced.length).trimStart() : t
  return { code, enhanced, lines: texts.map(strip) }
}

export const replyText = (r: RemoteReply): string =>
  `${r.code}${r.enhanced === undefined ? '' : ` ${r.enhanced}`} ${r.lines.join(' / ')}`
