/**
 * An outbound SMTP (RFC 5321) or LMTP (RFC 2033) client session: greeting, EHLO/LHLO with
 * capabilities, STARTTLS (RFC 3207; opportunistic or required, verification and SNI
 * configurable), AUTH PLAIN/LOGIN (RFC 4954), Postfix XCLIENT/XFORWARD, then transactions
 * (transaction.ts). One session serves many messages when pooled (RSET between them).
 *
 * Every step has a timeout. Security: AUTH only over TLS unless `authWithoutTls` is set,
 * credentials never reach logs; the capability list is re-read after STARTTLS and XCLIENT
 * (RFC 3207 §4.2), never trusted from before.
 */
import type { ConnectionOptions } from 'node:tls'
import { encodeXtext } from '../../protocol/xtext.ts'
import { OutboundError } from './errors.ts'
import { type RemoteReply, replyText, type Target, Wire } from './wire.ts'

export type TlsMode = 'none' | 'opportunistic' | 'required'

export interface ClientTimeouts {
  readonly connectMs: number
  /** Greeting, EHLO, STARTTLS, AUTH, XCLIENT, MAIL, RCPT, RSET, DATA's 354. */
  readonly commandMs: number
  /** No progress while writing message content. */
  readonly dataBlockMs: number
  /** The reply(ies) after the final dot. */
  readonly dataDoneMs: number
}

export interface ClientOptions {
  readonly protocol: 'smtp' | 'lmtp'
  /** Our name in EHLO/LHLO. */
  readonly helo: string
  readonly tls: TlsMode
  /** Check the next hop's certificate chain and name (default on when TLS is required). */
  readonly tlsVerify: boolean
  /** Name for SNI and the certificate check; default: the target host when it is a name. */
  readonly tlsServername?: string | undefined
  /** Extra trust anchors (PEM). */
  readonly tlsCa?: string | Buffer | undefined
  readonly auth?: { readonly user: string; readonly password: string } | undefined
  readonly authWithoutTls?: boolean
  readonly timeouts: ClientTimeouts
}

/** EHLO keywords, upper-case, with their parameters. */
export type Capabilities = ReadonlyMap<string, readonly string[]>

/** What XCLIENT/XFORWARD tell the next hop about our client. */
export interface ClientIdentity {
  readonly addr: string
  readonly port: number
  readonly name: string | undefined
  readonly helo: string | undefined
  readonly proto: 'SMTP' | 'ESMTP'
  readonly login: string | undefined
}

const isIp = (h: string) => /^[\d.]+$/.test(h) || h.includes(':')

export class SmtpClient {
  readonly wire: Wire
  readonly options: ClientOptions
  #caps: Capabilities = new Map()
  greeting: RemoteReply | undefined
  /** Messages sent on this session, and when it was last used (for the pool). */
  messages = 0
  lastUsed = Date.now()
  #authenticated = false

  private constructor(wire: Wire, options: ClientOptions) {
    this.wire = wire
    this.options = options
  }

  /** Connects and runs greeting, EHLO, STARTTLS and AUTH as configured. */
  static async connect(target: Target, options: ClientOptions): Promise<SmtpClient> {
    const wire = await Wire.open(target, options.timeouts.connectMs)
    const c = new SmtpClient(wire, options)
    try {
      c.greeting = await c.#expect('greeting', 2)
      await c.#hello()
      await c.#startTls(target)
      await c.#authenticate()
      return c
    } catch (e) {
      wire.destroy()
      throw e
    }
  }

  get capabilities(): Capabilities {
    return this.#caps
  }

  has(keyword: string): boolean {
    return this.#caps.has(keyword)
  }

  get usable(): boolean {
    return this.wire.alive
  }

  get encrypted(): boolean {
    return this.wire.encrypted
  }

  /** Sends a command and waits for its reply (no class check). */
  async ask(line: string, step: string): Promise<RemoteReply> {
    this.wire.command(line)
    return this.wire.read(step, this.options.timeouts.commandMs)
  }

  /** Reads a reply and throws an OutboundError of kind `reply` unless its class is `want`. */
  async #expect(step: string, want: 2 | 3): Promise<RemoteReply> {
    const r = await this.wire.read(step, this.options.timeouts.commandMs)
    if (Math.floor(r.code / 100) !== want) throw new OutboundError('reply', step, `${step} refused: ${replyText(r)}`, r)
    return r
  }

  async #hello(name: string = this.options.helo): Promise<void> {
    const verb = this.options.protocol === 'lmtp' ? 'LHLO' : 'EHLO'
    const r = await this.ask(`${verb} ${name}`, verb)
    if (r.code !== 250) {
      if (this.options.protocol === 'lmtp') throw new OutboundError('reply', verb, `LHLO refused: ${replyText(r)}`, r)
      // RFC 5321 §3.2: fall back to HELO; no extensions then.
      const h = await this.ask(`HELO ${name}`, 'HELO')
      if (h.code !== 250) throw new OutboundError('reply', 'HELO', `HELO refused: ${replyText(h)}`, h)
      this.#caps = new Map()
      return
    }
    const caps = new Map<string, string[]>()
    for (const line of r.lines.slice(1)) {
      const [kw, ...params] = line.trim().split(/\s+/)
      if (kw) caps.set(kw.toUpperCase(), params)
    }
    this.#caps = caps
  }

  async #startTls(target: Target): Promise<void> {
    const mode = this.options.tls
    if (mode === 'none') return
    if (!this.has('STARTTLS')) {
      if (mode === 'required') throw new OutboundError('tls', 'STARTTLS', 'next hop does not offer STARTTLS')
      return
    }
    const r = await this.ask('STARTTLS', 'STARTTLS')
    if (r.code !== 220) {
      if (mode === 'required') throw new OutboundError('tls', 'STARTTLS', `STARTTLS refused: ${replyText(r)}`, r)
      return
    }
    const host = 'host' in target ? target.host : undefined
    const servername = this.options.tlsServername ?? (host !== undefined && !isIp(host) ? host : undefined)
    const tlsOptions: ConnectionOptions = {
      rejectUnauthorized: this.options.tlsVerify,
      minVersion: 'TLSv1.2',
      ...(servername === undefined ? {} : { servername }),
      ...(this.options.tlsCa === undefined ? {} : { ca: this.options.tlsCa }),
      // Without a name (an IP literal) the certificate is checked against the address.
      ...(servername === undefined && host !== undefined ? { host } : {}),
    }
    await this.wire.startTls(tlsOptions, this.options.timeouts.commandMs)
    await this.#hello()
  }

  async #authenticate(): Promise<void> {
    const auth = this.options.auth
    if (auth === undefined || this.#authenticated) return
    if (!this.encrypted && !this.options.authWithoutTls)
      throw new OutboundError('auth', 'AUTH', 'refusing to send credentials without TLS')
    const mechs = (this.#caps.get('AUTH') ?? []).map((m) => m.toUpperCase())
    const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')
    let r: RemoteReply
    if (mechs.includes('PLAIN')) {
      r = await this.ask(`AUTH PLAIN ${b64(`\0${auth.user}\0${auth.password}`)}`, 'AUTH')
    } else if (mechs.includes('LOGIN')) {
      r = await this.ask('AUTH LOGIN', 'AUTH')
      if (r.code === 334) r = await this.ask(b64(auth.user), 'AUTH')
      if (r.code === 334) r = await this.ask(b64(auth.password), 'AUTH')
    } else throw new OutboundError('auth', 'AUTH', 'next hop offers neither AUTH PLAIN nor AUTH LOGIN')
    if (r.code !== 235) throw new OutboundError('auth', 'AUTH', `authentication failed: ${replyText(r)}`, r)
    this.#authenticated = true
  }

  /**
   * Postfix XCLIENT (www.postfix.org/XCLIENT_README.html): the next hop takes our client's
   * address and names as its own view of the session, greets again, and needs a new EHLO.
   * That EHLO carries the client's HELO name, as in the README's example: Postfix takes the
   * name in its Received field from the last EHLO, so our own name would replace the client's.
   * Only attributes the next hop lists are sent; values are xtext.
   */
  async xclient(id: ClientIdentity): Promise<void> {
    const offered = new Set((this.#caps.get('XCLIENT') ?? []).map((a) => a.toUpperCase()))
    const attrs = identityAttributes(id, offered, 'XCLIENT')
    if (attrs.length === 0) return
    const r = await this.ask(`XCLIENT ${attrs.join(' ')}`, 'XCLIENT')
    if (r.code !== 220) throw new OutboundError('reply', 'XCLIENT', `XCLIENT refused: ${replyText(r)}`, r)
    await this.#hello(id.helo)
    this.#authenticated = false
    await this.#authenticate()
  }

  /** Postfix XFORWARD: the client's identity for the next transaction's logs and headers. */
  async xforward(id: ClientIdentity): Promise<void> {
    const offered = new Set((this.#caps.get('XFORWARD') ?? []).map((a) => a.toUpperCase()))
    const attrs = identityAttributes(id, offered, 'XFORWARD')
    // XFORWARD lines are limited to 512 octets: send the attributes in small groups.
    for (let i = 0; i < attrs.length; i += 3) {
      const r = await this.ask(`XFORWARD ${attrs.slice(i, i + 3).join(' ')}`, 'XFORWARD')
      if (r.code !== 250) throw new OutboundError('reply', 'XFORWARD', `XFORWARD refused: ${replyText(r)}`, r)
    }
  }

  /** Ends the current transaction so the session can carry another message. */
  async rset(): Promise<void> {
    await this.#expectAfter('RSET', 2)
  }

  async #expectAfter(line: string, want: 2 | 3): Promise<RemoteReply> {
    this.wire.command(line)
    return this.#expect(line.split(' ')[0] as string, want)
  }

  quit(): Promise<void> {
    return this.wire.quit()
  }

  destroy(): void {
    this.wire.destroy()
  }
}

function identityAttributes(id: ClientIdentity, offered: ReadonlySet<string>, verb: 'XCLIENT' | 'XFORWARD'): string[] {
  const unavailable = '[UNAVAILABLE]'
  const addr = id.addr.includes(':') ? `IPV6:${id.addr}` : id.addr
  const values: [string, string | undefined][] = [
    ['ADDR', addr],
    ['NAME', id.name ?? unavailable],
    ['PORT', String(id.port)],
    ['HELO', id.helo === undefined ? unavailable : id.helo.slice(0, 255)],
    ['PROTO', id.proto],
    ...(verb === 'XCLIENT' ? [['LOGIN', id.login] as [string, string | undefined]] : []),
  ]
  const out: string[] = []
  for (const [k, v] of values) {
    if (!offered.has(k) || v === undefined) continue
    out.push(`${k}=${v === unavailable ? v : encodeXtext(v)}`)
  }
  return out
}
