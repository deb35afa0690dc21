/**
 * The admin listener (`--admin HOST:PORT`, node:http): `/metrics` (Prometheus), `/healthz`,
 * the status page (`/`, its script and style, `/events`), `/api/status`, and POST
 * `/api/reload` and `/api/drain` for `qtsmtpd reload|drain`.
 *
 * Security: with a token (`--admin-token-file`), every route but `/healthz` needs
 * `Authorization: Bearer TOKEN` (or Basic with the token as password, which browsers ask for);
 * without one the listener is loopback only (cli/admin-args.ts) and answers only requests
 * whose Host is a loopback address or `localhost` (DNS rebinding). POSTs need the
 * `X-Qtsmtpd-Admin` header, which no cross-site form can send. The page is static: it builds
 * its DOM with textContent under a Content-Security-Policy without inline script, so nothing a
 * client sent (a HELO, an address) can become markup.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expositionContentType, renderExposition } from '../metrics/exposition.ts'
import type { AdminBackend } from './backend.ts'
import { healthOf } from './health.ts'
import { maxStatusOffset, type StatusQuery } from './report.ts'
import { StatusFeed } from './status-feed.ts'
import { statusView } from './status-view.ts'

export interface AdminListenOptions {
  readonly host: string
  readonly port: number
  /** The bearer token; undefined: none (loopback only). */
  readonly token: string | undefined
}

/** The page's files, read at the first request for them (the package ships them in dist/admin/page/). */
const assets: Readonly<Record<string, { readonly type: string; readonly file: string }>> = {
  '/': { type: 'text/html; charset=utf-8', file: 'index.html' },
  '/status.js': { type: 'text/javascript; charset=utf-8', file: 'status.js' },
  '/status.css': { type: 'text/css; charset=utf-8', file: 'status.css' },
}
const assetCache = new Map<string, Buffer>()
function assetBody(file: string): Buffer {
  let body = assetCache.get(file)
  if (body === undefined) assetCache.set(file, (body = readFileSync(new URL(`./page/${file}`, import.meta.url))))
  return body
}

const securityHeaders: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
}

export class AdminServer {
  readonly #backend: AdminBackend
  readonly #token: Buffer | undefined
  readonly #server: Server
  readonly #feed: StatusFeed

  private constructor(backend: AdminBackend, token: string | undefined) {
    this.#backend = backend
    this.#token = token === undefined ? undefined : digest(token)
    this.#feed = new StatusFeed(backend)
    this.#server = createServer({ maxHeaderSize: 8192, requestTimeout: 15_000, headersTimeout: 10_000 }, (req, res) =>
      this.#handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) reply(res, 500, 'text/plain; charset=utf-8', `internal error: ${(e as Error).message}\n`)
        else res.destroy()
      }),
    )
    // Status streams and scrapers: a bounded number of sockets whatever a client does.
    this.#server.maxConnections = 64
  }

  /** Binds the listener; rejects when the address cannot be bound. */
  static async listen(backend: AdminBackend, opts: AdminListenOptions): Promise<AdminServer> {
    const admin = new AdminServer(backend, opts.token)
    await new Promise<void>((resolve, reject) => {
      admin.#server.once('error', reject)
      admin.#server.listen({ host: opts.host, port: opts.port }, () => {
        admin.#server.off('error', reject)
        resolve()
      })
    })
    return admin
  }

  get address(): AddressInfo {
    return this.#server.address() as AddressInfo
  }

  close(): void {
    this.#feed.close()
    this.#server.close()
    this.#server.closeAllConnections()
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin.invalid')
    const path = url.pathname
    if (path === '/healthz') {
      const h = await healthOf(this.#backend)
      return reply(res, h.state === 'ready' ? 200 : 503, 'text/plain; charset=utf-8', `${h.state}\n`)
    }
    if (this.#token === undefined && !loopbackHost(req.headers.host))
      return reply(res, 403, 'text/plain; charset=utf-8', 'this admin listener answers only to a loopback Host\n')
    if (this.#token !== undefined && !this.#authorized(req.headers.authorization)) {
      res.setHeader('www-authenticate', 'Basic realm="qtsmtpd admin", charset="UTF-8"')
      return reply(res, 401, 'text/plain; charset=utf-8', 'a bearer token is needed (Authorization: Bearer TOKEN)\n')
    }
    if (req.method === 'POST') return this.#command(req, res, path)
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD, POST')
      return reply(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n')
    }
    const asset = assets[path]
    if (asset !== undefined) {
      for (const [k, v] of Object.entries(securityHeaders)) res.setHeader(k, v)
      return reply(res, 200, asset.type, assetBody(asset.file))
    }
    if (path === '/favicon.ico') return reply(res, 204, 'image/x-icon', '')
    if (path === '/metrics')
      return reply(res, 200, expositionContentType, renderExposition(await this.#backend.metrics()))
    if (path === '/events') return this.#feed.open(req, res, this.#query(url), securityHeaders)
    if (path === '/api/status')
      return reply(res, 200, 'application/json', JSON.stringify(await statusView(this.#backend, this.#query(url))))
    return reply(res, 404, 'text/plain; charset=utf-8', 'not found\n')
  }

  async #command(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    // A custom header makes a cross-site request preflighted, and we answer no preflight.
    if (req.headers['x-qtsmtpd-admin'] === undefined)
      return reply(res, 403, 'text/plain; charset=utf-8', 'POST needs the X-Qtsmtpd-Admin header\n')
    req.resume()
    if (path === '/api/reload') {
      const outcome = await this.#backend.reload()
      return reply(res, outcome.ok ? 200 : 409, 'application/json', JSON.stringify(outcome))
    }
    if (path === '/api/drain') {
      const pid = this.#backend.facts().pid
      reply(res, 202, 'application/json', JSON.stringify({ ok: true, message: `draining process ${pid}` }))
      // After the answer is on its way: the drain closes this listener too.
      res.once('finish', () => this.#backend.drain())
      return
    }
    return reply(res, 404, 'text/plain; charset=utf-8', 'not found\n')
  }

  #query(url: URL): StatusQuery {
    const number = (name: string, fallback: number, max: number): number => {
      const v = Number(url.searchParams.get(name) ?? Number.NaN)
      return Number.isInteger(v) && v >= 0 ? Math.min(v, max) : fallback
    }
    const pageSize = this.#backend.settings.pageSize
    return {
      order: url.searchParams.get('order') === 'newest' ? 'newest' : 'oldest',
      offset: number('offset', 0, maxStatusOffset),
      limit: number('limit', pageSize, pageSize),
    }
  }

  #authorized(header: string | undefined): boolean {
    const token = this.#token
    if (token === undefined) return true
    const m = /^(Bearer|Basic)\s+(\S+)$/i.exec(header ?? '')
    if (!m) return false
    let given = m[2] as string
    if ((m[1] as string).toLowerCase() === 'basic') {
      const decoded = Buffer.from(given, 'base64').toString('utf8')
      given = decoded.slice(decoded.indexOf(':') + 1)
    }
    return timingSafeEqual(digest(given), token)
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

function reply(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

/** `127.0.0.1:9025`, `[::1]:9025`, `localhost:9025`: what a browser on this machine sends. */
function loopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false
  const name = host.replace(/:\d+$/, '').toLowerCase()
  return name === 'localhost' || /^127(\.\d{1,3}){3}$/.test(name) || name === '[::1]'
}
