/**
 * Golden SMTP transcripts (Postfix .in/.ref, chasquid .cmy, qpsmtpd command()): parse a `*.smtp`
 * file and play it against a real test server, byte-accurately, asserting every reply line and
 * the number of messages that reached the queue. The format is documented in docs/testing.md.
 *
 *   # settings: {"limits": {"recipients": 2}, "plugins": ["accept-all"]}
 *   S: 220 mx.test ESMTP qtsmtpd ready       one exact reply line
 *   C: EHLO client.test                      send the text + CRLF (one write)
 *   C~ "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n" send exactly these bytes (a JSON string)
 *   S~ ^250-SIZE \d+$                         one reply line matching a regex
 *   Q: 1                                      the queue holds exactly 1 message
 *   M~ ^Received: from client\.test           the newest queued message matches (multiline regex)
 *   T>= 50                                    at least 50 ms passed since the last C line was sent
 *   WAIT 200                                  pause
 *   TLS                                       handshake on the current connection (after a 220)
 *   CONNECT / CONNECT tls                     a new connection (the first one is implicit)
 *   SILENT 300                                no reply line arrives within 300 ms
 *   CLOSE                                     the server closes the connection, no line unread
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { connect as netConnect, type Socket } from 'node:net'
import { type TLSSocket, connect as tlsConnect } from 'node:tls'
import type { Limits, Policies, Timeouts } from '../../src/session/settings.ts'
import { startTestServer, type TestServer } from '../../src/testing/index.ts'
import { pluginsFromPresets } from './presets.ts'

export type Step =
  | { readonly op: 'send'; readonly bytes: Buffer; readonly line: number }
  | { readonly op: 'expect'; readonly exact?: string; readonly regex?: RegExp; readonly line: number }
  | { readonly op: 'queue'; readonly count: number; readonly line: number }
  | { readonly op: 'message'; readonly regex: RegExp; readonly line: number }
  | { readonly op: 'elapsed'; readonly ms: number; readonly line: number }
  | { readonly op: 'wait'; readonly ms: number; readonly line: number }
  | { readonly op: 'silent'; readonly ms: number; readonly line: number }
  | { readonly op: 'tls'; readonly line: number }
  | { readonly op: 'connect'; readonly tls: boolean; readonly line: number }
  | { readonly op: 'close'; readonly line: number }

export interface TranscriptSettings {
  readonly limits?: Partial<Limits>
  readonly timeouts?: Partial<Timeouts>
  readonly policies?: Partial<Policies>
  readonly tls?: boolean
  readonly plugins?: readonly string[]
}

export interface Transcript {
  readonly name: string
  readonly settings: TranscriptSettings
  readonly steps: readonly Step[]
}

const SETTING_KEYS = new Set(['limits', 'timeouts', 'policies', 'tls', 'plugins'])

export function parseTranscript(name: string, text: string): Transcript {
  let settings: TranscriptSettings = {}
  const steps: Step[] = []
  const lines = text.split('\n')
  lines.forEach((raw, i) => {
    const line = i + 1
    const s = raw.replace(/\r$/, '')
    const bad = (why: string): never => {
      throw new Error(`${name}:${line}: ${why}: ${JSON.stringify(s)}`)
    }
    if (s.startsWith('# settings:')) {
      const parsed = JSON.parse(s.slice('# settings:'.length)) as Record<string, unknown>
      for (const k of Object.keys(parsed)) if (!SETTING_KEYS.has(k)) bad(`unknown setting ${k}`)
      settings = parsed as TranscriptSettings
      return
    }
    if (s.trim() === '' || s.startsWith('#')) return
    const num = (t: string): number => {
      const n = Number(t.trim())
      if (!Number.isInteger(n) || n < 0) bad('expected a number')
      return n
    }
    if (s.startsWith('C: ')) steps.push({ op: 'send', bytes: Buffer.from(`${s.slice(3)}\r\n`, 'utf8'), line })
    else if (s.startsWith('C~ ')) {
      const v = JSON.parse(s.slice(3)) as unknown
      if (typeof v !== 'string') bad('C~ needs a JSON string')
      // Code points up to U+00FF are bytes (latin1), so "\u00ff" sends 0xFF; use C: for UTF-8 text.
      const str = v as string
      steps.push({ op: 'send', bytes: Buffer.from(str, /[^\u0000-\u00ff]/.test(str) ? 'utf8' : 'latin1'), line })
    } else if (s.startsWith('S: ')) steps.push({ op: 'expect', exact: s.slice(3), line })
    else if (s.startsWith('S~ ')) steps.push({ op: 'expect', regex: new RegExp(s.slice(3)), line })
    else if (s.startsWith('Q: ')) steps.push({ op: 'queue', count: num(s.slice(3)), line })
    else if (s.startsWith('M~ ')) steps.push({ op: 'message', regex: new RegExp(s.slice(3), 'm'), line })
    else if (s.startsWith('T>= ')) steps.push({ op: 'elapsed', ms: num(s.slice(4)), line })
    else if (s.startsWith('WAIT ')) steps.push({ op: 'wait', ms: num(s.slice(5)), line })
    else if (s.startsWith('SILENT ')) steps.push({ op: 'silent', ms: num(s.slice(7)), line })
    else if (s === 'TLS') steps.push({ op: 'tls', line })
    else if (s === 'CONNECT' || s === 'CONNECT tls') steps.push({ op: 'connect', tls: s === 'CONNECT tls', line })
    else if (s === 'CLOSE') steps.push({ op: 'close', line })
    else bad('unknown line')
  })
  return { name, settings, steps }
}

/** A line-level client: every reply line is checked on its own, in order. */
class LineClient {
  socket: Socket | TLSSocket
  #buffer = Buffer.alloc(0)
  readonly lines: string[] = []
  closed = false
  #wake: (() => void) | undefined

  constructor(socket: Socket | TLSSocket) {
    this.socket = socket
    this.#listen(socket)
  }

  #listen(socket: Socket | TLSSocket): void {
    socket.on('data', this.#onData)
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
      this.#wake?.()
    })
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#buffer = Buffer.concat([this.#buffer, chunk])
    for (let end = this.#buffer.indexOf('\r\n'); end >= 0; end = this.#buffer.indexOf('\r\n')) {
      this.lines.push(this.#buffer.subarray(0, end).toString('utf8'))
      this.#buffer = this.#buffer.subarray(end + 2)
    }
    this.#wake?.()
  }

  get partial(): string {
    return this.#buffer.toString('latin1')
  }

  /** Resolves when a line is available or the socket closed, or after ms. */
  async waitFor(pred: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms
    while (!pred()) {
      const left = deadline - Date.now()
      if (left <= 0) return false
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(t)
          resolve()
        }
      })
      this.#wake = undefined
    }
    return true
  }

  async startTls(): Promise<void> {
    const plain = this.socket as Socket
    plain.off('data', this.#onData)
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(s))
      s.once('error', reject)
    })
    this.socket = secure
    this.#listen(secure)
  }

  static async open(port: number, tls: boolean): Promise<LineClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = tls
        ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' }, () => resolve(s))
        : netConnect({ port, host: '127.0.0.1' }, () => resolve(s))
      s.once('error', reject)
    })
    socket.setNoDelay(true)
    return new LineClient(socket)
  }
}

export async function startTranscriptServer(settings: TranscriptSettings): Promise<TestServer> {
  return startTestServer({
    plugins: pluginsFromPresets(settings.plugins ?? ['accept-all']),
    ...(settings.limits === undefined ? {} : { limits: settings.limits }),
    ...(settings.timeouts === undefined ? {} : { timeouts: settings.timeouts }),
    ...(settings.policies === undefined ? {} : { policies: settings.policies }),
    tls: settings.tls === true,
    logLevel: 3,
  })
}

const REPLY_WAIT_MS = 5000

/** Plays a transcript on a fresh server; throws an AssertionError naming the file and line. */
export async function playTranscript(t: Transcript): Promise<void> {
  const srv = await startTranscriptServer(t.settings)
  const clients: LineClient[] = []
  try {
    let c = await LineClient.open(srv.port, false)
    clients.push(c)
    let lastSend = Date.now()
    for (const step of t.steps) {
      const where = `${t.name}:${step.line}`
      switch (step.op) {
        case 'send':
          lastSend = Date.now()
          c.socket.write(step.bytes)
          break
        case 'expect': {
          await c.waitFor(() => c.lines.length > 0 || c.closed, REPLY_WAIT_MS)
          const got = c.lines.shift()
          const want = step.exact ?? String(step.regex)
          if (got === undefined)
            assert.fail(`${where}: expected ${want}, got ${c.closed ? 'a closed connection' : 'nothing'}`)
          if (step.exact !== undefined) assert.equal(got, step.exact, `${where}: reply line`)
          else assert.match(got, step.regex as RegExp, `${where}: reply line`)
          break
        }
        case 'queue':
          assert.equal(srv.queued.length, step.count, `${where}: messages in the queue`)
          break
        case 'message': {
          const last = srv.queued.at(-1)
          assert.ok(last !== undefined, `${where}: no message in the queue`)
          assert.match(last.text, step.regex, `${where}: queued message`)
          break
        }
        case 'elapsed':
          assert.ok(Date.now() - lastSend >= step.ms, `${where}: only ${Date.now() - lastSend} ms since the last send`)
          break
        case 'wait':
          await new Promise((r) => setTimeout(r, step.ms))
          break
        case 'silent':
          await c.waitFor(() => c.lines.length > 0, step.ms)
          assert.deepEqual(c.lines, [], `${where}: unexpected reply lines`)
          break
        case 'tls':
          await c.startTls()
          break
        case 'connect':
          assert.deepEqual(c.lines, [], `${where}: unread reply lines before CONNECT`)
          c.socket.destroy()
          c = await LineClient.open(step.tls ? (srv.smtpsPort ?? srv.port) : srv.port, step.tls)
          clients.push(c)
          break
        case 'close': {
          const closed = await c.waitFor(() => c.closed, REPLY_WAIT_MS)
          assert.deepEqual(c.lines, [], `${where}: unread reply lines before the close`)
          assert.ok(closed, `${where}: the server did not close the connection`)
          break
        }
      }
    }
    // Nothing may be left unread at the end (a stray reply is a bug as much as a missing one).
    await c.waitFor(() => c.lines.length > 0, 50)
    assert.deepEqual(c.lines, [], `${t.name}: unread reply lines at the end`)
  } finally {
    for (const c of clients) c.socket.destroy()
    await srv.close()
  }
}

export async function loadTranscript(path: string, name: string): Promise<Transcript> {
  return parseTranscript(name, await readFile(path, 'utf8'))
}
