/**
 * A small SMTP client for the benchmark's own measurements: the latency probe, the STARTTLS
 * load (smtp-source has no TLS) and the idle-connection test. One transaction per connection,
 * no pipelining, like smtp-source. Every wait has a deadline.
 */
import { connect, type Socket } from 'node:net'
import { type TLSSocket, connect as tlsConnect } from 'node:tls'

export interface TxnOptions {
  readonly port: number
  readonly host?: string
  readonly starttls?: boolean
  readonly body: Buffer
  readonly from?: string
  readonly to?: string
  readonly timeoutMs?: number
  /** AUTH PLAIN with these after EHLO (after STARTTLS when there is one). */
  readonly auth?: { readonly user: string; readonly password: string }
}

/** Reads SMTP replies (multi-line aware) from a socket that may be replaced by a TLS socket. */
class ReplyReader {
  #buf = ''
  #waiting: { resolve: (r: string) => void; reject: (e: Error) => void } | undefined
  #lines: string[] = []
  #replies: string[] = []
  #error: Error | undefined
  socket: Socket | TLSSocket

  constructor(socket: Socket | TLSSocket) {
    this.socket = socket
    this.attach(socket)
  }

  attach(socket: Socket | TLSSocket): void {
    this.socket = socket
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => this.#push(d))
    socket.on('error', (e) => this.#fail(e))
    socket.on('close', () => this.#fail(new Error('connection closed')))
  }

  detach(): void {
    this.socket.removeAllListeners('data')
    this.socket.removeAllListeners('close')
    this.socket.removeAllListeners('error')
    this.socket.on('error', () => {})
  }

  #fail(e: Error): void {
    this.#error ??= e
    const w = this.#waiting
    this.#waiting = undefined
    w?.reject(e)
  }

  #push(d: string): void {
    this.#buf += d
    for (;;) {
      const i = this.#buf.indexOf('\r\n')
      if (i < 0) break
      const line = this.#buf.slice(0, i)
      this.#buf = this.#buf.slice(i + 2)
      this.#lines.push(line)
      if (line.charAt(3) !== '-') {
        const reply = this.#lines.join('\n')
        this.#lines = []
        const w = this.#waiting
        this.#waiting = undefined
        if (w) w.resolve(reply)
        else this.#replies.push(reply)
      }
    }
  }

  next(): Promise<string> {
    const ready = this.#replies.shift()
    if (ready !== undefined) return Promise.resolve(ready)
    if (this.#error) return Promise.reject(this.#error)
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject }
    })
  }
}

async function expect(r: ReplyReader, code: string, what: string): Promise<string> {
  const reply = await r.next()
  if (!reply.startsWith(code)) throw new Error(`${what}: expected ${code}, got ${reply.slice(0, 200)}`)
  return reply
}

function send(r: ReplyReader, line: string | Buffer): void {
  r.socket.write(line)
}

/** Connects and resolves once the 220 greeting arrived. */
export function openSession(port: number, host = '127.0.0.1', timeoutMs = 30_000): Promise<ReplyReader> {
  return new Promise((resolve, reject) => {
    // No Nagle: the body and the final dot go in two writes, and a delayed ACK would hold the second 40 ms.
    const socket = connect({ port, host, noDelay: true })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error('greeting timeout'))
    }, timeoutMs)
    const r = new ReplyReader(socket)
    expect(r, '220', 'greeting').then(
      () => {
        clearTimeout(timer)
        resolve(r)
      },
      (e: Error) => {
        clearTimeout(timer)
        socket.destroy()
        reject(e)
      },
    )
  })
}

/** One whole transaction on a new connection: the time it took, in ms. Throws on any non-2xx/3xx. */
export async function oneTransaction(o: TxnOptions): Promise<number> {
  const start = performance.now()
  const r = await openSession(o.port, o.host, o.timeoutMs)
  const timer = setTimeout(() => r.socket.destroy(new Error('transaction timeout')), o.timeoutMs ?? 30_000)
  try {
    send(r, 'EHLO probe.bench.test\r\n')
    await expect(r, '250', 'EHLO')
    if (o.starttls) {
      send(r, 'STARTTLS\r\n')
      await expect(r, '220', 'STARTTLS')
      r.detach()
      const plain = r.socket as Socket
      const secure = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'bench.test' })
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve)
        secure.once('error', reject)
      })
      r.attach(secure)
      send(r, 'EHLO probe.bench.test\r\n')
      await expect(r, '250', 'EHLO after STARTTLS')
    }
    if (o.auth !== undefined) {
      send(r, `AUTH PLAIN ${Buffer.from(`\0${o.auth.user}\0${o.auth.password}`).toString('base64')}\r\n`)
      await expect(r, '235', 'AUTH PLAIN')
    }
    send(r, `MAIL FROM:<${o.from ?? 'probe@sender.test'}>\r\n`)
    await expect(r, '250', 'MAIL')
    send(r, `RCPT TO:<${o.to ?? 'user@bench.test'}>\r\n`)
    await expect(r, '250', 'RCPT')
    send(r, 'DATA\r\n')
    await expect(r, '354', 'DATA')
    send(r, o.body)
    send(r, '.\r\n')
    await expect(r, '250', 'end of data')
    send(r, 'QUIT\r\n')
    await r.next().catch(() => '')
    return performance.now() - start
  } finally {
    clearTimeout(timer)
    r.detach()
    r.socket.destroy()
  }
}

/** A message body of about `size` octets, CRLF lines of 76 characters, dot-safe. */
export function makeBody(size: number): Buffer {
  const head = 'From: <probe@sender.test>\r\nTo: <user@bench.test>\r\nSubject: bench\r\n\r\n'
  const line = `${'x'.repeat(76)}\r\n`
  const n = Math.max(1, Math.ceil((size - head.length) / line.length))
  return Buffer.from(head + line.repeat(n), 'latin1')
}

export interface LoadResult {
  readonly ok: number
  readonly failed: number
  readonly firstError?: string
  readonly latenciesMs: number[]
  readonly elapsedMs: number
}

/**
 * `concurrency` loops of one-transaction connections until `count` are done or `capMs` passed.
 * Used for STARTTLS load (same shape as smtp-source without -d) and for the latency probe.
 */
export async function runLoad(
  o: TxnOptions & { readonly concurrency: number; readonly count: number; readonly capMs: number },
): Promise<LoadResult> {
  const start = performance.now()
  let started = 0
  let ok = 0
  let failed = 0
  let firstError: string | undefined
  const latenciesMs: number[] = []
  const worker = async () => {
    while (started < o.count && performance.now() - start < o.capMs && failed < 50) {
      started++
      try {
        latenciesMs.push(await oneTransaction(o))
        ok++
      } catch (e) {
        failed++
        firstError ??= (e as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, worker))
  const result = { ok, failed, latenciesMs, elapsedMs: performance.now() - start }
  return firstError === undefined ? result : { ...result, firstError }
}

/** Opens `n` connections, each waiting for its greeting, `parallel` at a time; returns the sockets. */
export async function openIdle(port: number, n: number, parallel = 200): Promise<{ open: Socket[]; failed: number }> {
  const open: Socket[] = []
  let failed = 0
  let next = 0
  const worker = async () => {
    while (next < n && failed < 100) {
      next++
      try {
        const r = await openSession(port)
        r.detach()
        open.push(r.socket as Socket)
      } catch {
        failed++
      }
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  return { open, failed }
}
