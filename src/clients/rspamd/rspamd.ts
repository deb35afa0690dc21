/**
 * An rspamd client: `POST /checkv2` of rspamd's HTTP protocol (rspamd.com/doc/developers/protocol),
 * over undici (a pool of keep-alive connections per client, TCP or a Unix socket). The message is
 * the request body, streamed from the spool with back-pressure under a Content-Length; the
 * envelope and the session go in rspamd's request headers (IP, Helo, From, Rcpt, User, ...). One
 * deadline covers the request, the reply is bounded and checked field by field, and every way it
 * can go wrong is a ScannerError with its `failure`, as for spamd and clamd.
 *
 * Not here: what the action means for the message (plugins/content/rspamd.ts), /learnspam and
 * the controller's other endpoints, the fuzzy protocol.
 */
import type { Readable } from 'node:stream'
import { Agent, errors, request } from 'undici'
import { printable, ScannerError } from '../exchange.ts'

export type RspamdAction = 'no action' | 'greylist' | 'add header' | 'rewrite subject' | 'soft reject' | 'reject'
const ACTIONS: readonly string[] = ['no action', 'greylist', 'add header', 'rewrite subject', 'soft reject', 'reject']

/** One header rspamd asks us to add (milter.add_headers); `order` is an insert position, 0 = top. */
export interface RspamdAddHeader {
  readonly name: string
  readonly value: string
  readonly order: number | undefined
}

/** One header rspamd asks us to remove (milter.remove_headers): 0 = every one, N = the Nth, -N = Nth from the end. */
export interface RspamdRemoveHeader {
  readonly name: string
  readonly index: number
}

export interface RspamdResult {
  readonly action: RspamdAction
  readonly score: number
  readonly requiredScore: number
  /** rspamd skipped the message (a settings rule, a prefilter); `action` is still what it says. */
  readonly skipped: boolean
  readonly symbols: readonly string[]
  /** The SMTP text rspamd proposes for a refusal (messages.smtp_message). */
  readonly smtpMessage: string | undefined
  /** The new Subject for `rewrite subject`. */
  readonly subject: string | undefined
  readonly addHeaders: readonly RspamdAddHeader[]
  readonly removeHeaders: readonly RspamdRemoveHeader[]
}

/** What rspamd is told about the message (request headers of its protocol). */
export interface RspamdEnvelope {
  readonly ip?: string | undefined
  readonly helo?: string | undefined
  readonly hostname?: string | undefined
  /** The envelope sender, `''` for the null sender. */
  readonly from: string
  readonly rcpt: readonly string[]
  readonly queueId?: string | undefined
  /** The SMTP AUTH user: rspamd's settings and DKIM signing key on it. */
  readonly user?: string | undefined
  /** The one recipient, for per-user settings (rspamd's Deliver-To). */
  readonly deliverTo?: string | undefined
  /** Selects a settings rule by its id (rspamd's Settings-ID). */
  readonly settingsId?: string | undefined
  readonly mtaName?: string | undefined
  readonly tlsCipher?: string | undefined
  readonly tlsVersion?: string | undefined
}

export interface RspamdClientOptions {
  /** `http://host:port` (rspamd's normal worker, 11333) or a Unix socket path. */
  readonly server: { readonly url: string } | { readonly socketPath: string }
  /** Connections kept per client. */
  readonly connections?: number
}

export interface RspamdCheckOptions {
  readonly timeoutMs: number
  readonly signal?: AbortSignal | undefined
  /** Largest reply accepted (default 256 KiB). */
  readonly maxReplyBytes?: number
}

/** Header values go out as bytes: UTF-8 (SMTPUTF8 addresses) written as latin1 code units. */
const headerValue = (s: string): string => Buffer.from(s, 'utf8').toString('latin1')

export class RspamdClient {
  readonly #agent: Agent
  readonly #origin: string
  readonly #peer: string

  constructor(opts: RspamdClientOptions) {
    const max = opts.connections ?? 16
    if ('socketPath' in opts.server) {
      this.#agent = new Agent({ connections: max, connect: { socketPath: opts.server.socketPath } })
      this.#origin = 'http://localhost'
      this.#peer = opts.server.socketPath
    } else {
      this.#agent = new Agent({ connections: max })
      this.#origin = opts.server.url.replace(/\/+$/, '')
      this.#peer = this.#origin
    }
  }

  /** Scans the message; `length` must be the exact number of bytes `body` yields. */
  async check(
    body: Readable,
    length: number,
    envelope: RspamdEnvelope,
    opts: RspamdCheckOptions,
  ): Promise<RspamdResult> {
    const deadline = AbortSignal.timeout(opts.timeoutMs)
    const signal = opts.signal === undefined ? deadline : AbortSignal.any([opts.signal, deadline])
    const headers: Record<string, string | string[]> = {
      'content-length': String(length),
      from: headerValue(envelope.from === '' ? '<>' : envelope.from),
      rcpt: envelope.rcpt.map(headerValue),
    }
    const optional: [string, string | undefined][] = [
      ['ip', envelope.ip],
      ['helo', envelope.helo],
      ['hostname', envelope.hostname],
      ['queue-id', envelope.queueId],
      ['user', envelope.user],
      ['deliver-to', envelope.deliverTo],
      ['settings-id', envelope.settingsId],
      ['mta-name', envelope.mtaName],
      ['tls-cipher', envelope.tlsCipher],
      ['tls-version', envelope.tlsVersion],
    ]
    for (const [name, value] of optional) if (value !== undefined) headers[name] = headerValue(value)
    const max = opts.maxReplyBytes ?? 256 * 1024
    let text: string
    try {
      const res = await request(`${this.#origin}/checkv2`, {
        method: 'POST',
        dispatcher: this.#agent,
        headers,
        body,
        signal,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
      })
      const declared = Number(res.headers['content-length'] ?? 0)
      if (declared > max) {
        res.body.destroy()
        throw new ScannerError('oversized', `${this.#peer}: reply of ${declared} bytes, more than ${max}`)
      }
      const chunks: Buffer[] = []
      let size = 0
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length
        if (size > max) {
          res.body.destroy()
          throw new ScannerError('oversized', `${this.#peer}: reply larger than ${max} bytes`)
        }
        chunks.push(chunk)
      }
      text = Buffer.concat(chunks).toString('utf8')
      if (res.statusCode !== 200)
        throw new ScannerError('refused', `${this.#peer}: HTTP ${res.statusCode} ${printable(text, 200)}`)
    } catch (e) {
      if (e instanceof ScannerError) throw e
      if (deadline.aborted) throw new ScannerError('timeout', `${this.#peer}: no reply within ${opts.timeoutMs} ms`)
      if (opts.signal?.aborted) throw new ScannerError('aborted', `${this.#peer}: ${describe(opts.signal.reason)}`)
      throw new ScannerError(failureOf(e), `${this.#peer}: ${describe(e)}`, { cause: e })
    }
    return parseCheckReply(text)
  }

  close(): Promise<void> {
    return this.#agent.close()
  }
}

function failureOf(e: unknown): ScannerError['failure'] {
  const code = (e as { code?: string; cause?: { code?: string } }).cause?.code ?? (e as { code?: string }).code
  if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND')
    return 'unreachable'
  if (e instanceof errors.HeadersTimeoutError || e instanceof errors.BodyTimeoutError) return 'timeout'
  if (e instanceof errors.HTTPParserError) return 'malformed'
  return 'closed'
}

const NAME = /^[\x21-\x39\x3b-\x7e]{1,100}$/
const MAX_EDITS = 100

/** Checks and extracts what a plugin needs from rspamd's /checkv2 JSON. */
export function parseCheckReply(text: string): RspamdResult {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new ScannerError('malformed', `rspamd reply is not JSON: "${printable(text, 100)}"`)
  }
  const bad = (what: string) => new ScannerError('malformed', `rspamd reply: ${what}`)
  if (!isObject(json)) throw bad('not an object')
  const { action, score } = json
  const required = json.required_score
  if (typeof action !== 'string' || !ACTIONS.includes(action))
    throw bad(`unknown action "${printable(String(action))}"`)
  if (typeof score !== 'number' || !Number.isFinite(score)) throw bad('no numeric score')
  if (typeof required !== 'number' || !Number.isFinite(required)) throw bad('no numeric required_score')
  const messages = isObject(json.messages) ? json.messages : {}
  const smtpMessage = optionalText(messages.smtp_message, 'messages.smtp_message', bad)
  const subject = optionalText(json.subject, 'subject', bad)
  const symbols = isObject(json.symbols) ? Object.keys(json.symbols).filter((s) => NAME.test(s)) : []
  const addHeaders: RspamdAddHeader[] = []
  const removeHeaders: RspamdRemoveHeader[] = []
  const milter = isObject(json.milter) ? json.milter : {}
  if (isObject(milter.add_headers))
    for (const [name, spec] of Object.entries(milter.add_headers)) {
      if (!NAME.test(name)) throw bad(`header name "${printable(name)}"`)
      for (const one of Array.isArray(spec) ? spec : [spec]) {
        const raw = typeof one === 'string' ? one : isObject(one) ? one.value : undefined
        const order = isObject(one) ? one.order : undefined
        const value = optionalText(raw, `value of ${name}`, bad)
        if (value === undefined) throw bad(`value of ${name}`)
        if (order !== undefined && !Number.isInteger(order)) throw bad(`order of ${name}`)
        // rspamd's order -1 (its default) appends; 0 and up insert at that position.
        const at = order === undefined || (order as number) < 0 ? undefined : (order as number)
        addHeaders.push({ name, value, order: at })
      }
    }
  if (isObject(milter.remove_headers))
    for (const [name, spec] of Object.entries(milter.remove_headers)) {
      if (!NAME.test(name)) throw bad(`header name "${printable(name)}"`)
      for (const index of Array.isArray(spec) ? spec : [spec]) {
        if (!Number.isInteger(index)) throw bad(`index of ${name}`)
        removeHeaders.push({ name, index: index as number })
      }
    }
  if (addHeaders.length + removeHeaders.length > MAX_EDITS) throw bad(`more than ${MAX_EDITS} header edits`)
  return {
    action: action as RspamdAction,
    score,
    requiredScore: required,
    skipped: json.is_skipped === true,
    symbols,
    smtpMessage,
    subject,
    addHeaders,
    removeHeaders,
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** A string field, unfolded; control characters other than folding are an error (they would reach SMTP or headers). */
function optionalText(v: unknown, what: string, bad: (w: string) => Error): string | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw bad(`${what} is not a string`)
  const s = unfold(v)
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(s)) throw bad(`${what} has control characters`)
  return s
}

/** Header values come folded (CRLF + WSP) at times: the CRLFs go, our writer folds again. */
const unfold = (v: string): string => v.replace(/\r?\n(?=[ \t])/g, '')

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))
