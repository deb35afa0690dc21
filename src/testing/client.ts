/**
 * A byte-accurate SMTP test client: raw writes for hostile input, replies read whole
 * (multi-line included) whatever the TCP segmentation, STARTTLS on demand.
 */
import { connect as netConnect, type Socket } from 'node:net'
import { type TLSSocket, connect as tlsConnect } from 'node:tls'

export interface SmtpReply {
  readonly code: number
  readonly lines: readonly string[]
  /** All lines joined with newlines, without the code prefix. */
  readonly text: string
  /** The reply as received, e.g. `250-a\r\n250 b\r\n`. */
  readonly raw: string
}

export type ReplyMatcher = number | RegExp | string

export class SmtpTestClient {
  #socket: Socket | TLSSocket
  #buffer = ''
  #replies: SmtpReply[] = []
  #waiters: (() => void)[] = []
  #closed = false
  readonly #closedPromise: Promise<void>
  #resolveClosed!: () => void

  private constructor(socket: Socket) {
    this.#socket = socket
    this.#closedPromise = new Promise((r) => {
      this.#resolveClosed = r
    })
    this.#listen(socket)
  }

  /** `localAddress`: the client's own address (`127.0.0.5`), to test per-address behaviour on loopback. */
  static async connect(
    port: number,
    host = '127.0.0.1',
    opts: { tls?: boolean; servername?: string; localAddress?: string } = {},
  ) {
    const from = opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = opts.tls
        ? tlsConnect(
            { port, host, ...from, rejectUnauthorized: false, servername: opts.servername ?? 'localhost' },
            () => resolve(s),
          )
        : netConnect({ port, host, ...from }, () => resolve(s))
      s.once('error', reject)
    })
    return new SmtpTestClient(socket)
  }

  #listen(socket: Socket): void {
    socket.setEncoding('utf8')
    socket.on('data', this.#onData)
    socket.on('error', () => {})
    socket.on('close', () => {
      this.#closed = true
      this.#resolveClosed()
      this.#wake()
    })
  }

  readonly #onData = (chunk: string): void => {
    this.#buffer += chunk
    let lines: string[] = []
    for (;;) {
      const end = this.#buffer.indexOf('\r\n')
      if (end < 0) break
      const line = this.#buffer.slice(0, end)
      this.#buffer = this.#buffer.slice(end + 2)
      lines.push(line)
      if (line.charAt(3) !== '-') {
        this.#replies.push(toReply(lines))
        lines = []
      }
    }
    if (lines.length > 0) this.#buffer = `${lines.map((l) => `${l}\r\n`).join('')}${this.#buffer}`
    this.#wake()
  }

  #wake(): void {
    const w = this.#waiters
    this.#waiters = []
    for (const f of w) f()
  }

  get isClosed(): boolean {
    return this.#closed
  }

  /** Resolves when the server closed the connection. */
  closed(): Promise<void> {
    return this.#closedPromise
  }

  /** The next reply; rejects after timeoutMs or if the connection closes first. */
  async reply(timeoutMs = 5000): Promise<SmtpReply> {
    const deadline = Date.now() + timeoutMs
    while (this.#replies.length === 0) {
      if (this.#closed)
        throw new Error(`connection closed while waiting for a reply (buffer: ${JSON.stringify(this.#buffer)})`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
    return this.#replies.shift() as SmtpReply
  }

  /** Waits for a reply and checks it against a code, a regex on the raw reply, or a prefix. */
  async expect(matcher: ReplyMatcher, timeoutMs = 5000): Promise<SmtpReply> {
    const r = await this.reply(timeoutMs)
    if (!matches(r, matcher)) throw new Error(`expected ${String(matcher)}, got ${JSON.stringify(r.raw)}`)
    return r
  }

  /** Writes raw bytes exactly as given. */
  write(data: string | Buffer): void {
    this.#socket.write(data)
  }

  /** Sends a command line (CRLF added) and, optionally, checks the reply. */
  async send(line: string, matcher?: ReplyMatcher, timeoutMs?: number): Promise<SmtpReply | undefined> {
    this.write(`${line}\r\n`)
    return matcher === undefined ? undefined : this.expect(matcher, timeoutMs)
  }

  /** STARTTLS and the handshake; the client then talks TLS. */
  async startTls(servername = 'localhost'): Promise<void> {
    await this.send('STARTTLS', 220)
    const plain = this.#socket as Socket
    plain.off('data', this.#onData)
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, rejectUnauthorized: false, servername }, () => resolve(s))
      s.once('error', reject)
    })
    this.#socket = secure
    this.#listen(secure)
  }

  get tlsProtocol(): string | null {
    return 'getProtocol' in this.#socket ? (this.#socket as TLSSocket).getProtocol() : null
  }

  /** Keying material exported from the TLS connection (RFC 5705), for channel binding; undefined before TLS. */
  tlsExporter(label: string, length: number): Buffer | undefined {
    const socket = this.#socket
    return 'exportKeyingMaterial' in socket ? socket.exportKeyingMaterial(length, label, Buffer.alloc(0)) : undefined
  }

  /** Replies that arrived and were not read yet. */
  pending(): readonly SmtpReply[] {
    return this.#replies
  }

  async quit(): Promise<void> {
    if (this.#closed) return
    this.write('QUIT\r\n')
    await Promise.race([this.closed(), new Promise((r) => setTimeout(r, 1000))])
    this.destroy()
  }

  destroy(): void {
    this.#socket.destroy()
  }
}

function toReply(lines: string[]): SmtpReply {
  const code = Number(lines[0]?.slice(0, 3))
  const texts = lines.map((l) => l.slice(4))
  return { code, lines: texts, text: texts.join('\n'), raw: lines.map((l) => `${l}\r\n`).join('') }
}

export function matches(r: SmtpReply, m: ReplyMatcher): boolean {
  if (typeof m === 'number') return r.code === m
  if (typeof m === 'string') return r.raw.startsWith(m)
  return m.test(r.raw)
}
