/**
 * Connecting to a TCP or Unix-socket service (spamd, clamd, a policy server, LDAP) with one
 * deadline for the whole connect, TLS handshake included, and an AbortSignal: a plugin passes its
 * hook's `ctx.signal` and never holds a session longer than its own timeout.
 *
 * Host names are resolved by the operating system (getaddrinfo, /etc/hosts), not by the DNS
 * service: they name configured services, not data from the client.
 * Security: the socket keeps an error listener, so an error after connect (a reset) ends the
 * socket and rejects its reader instead of crashing the process.
 */
import { type Socket, connect as tcpConnect } from 'node:net'
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls'

export type ConnectTarget = { readonly host: string; readonly port: number } | { readonly path: string }

export interface ConnectOptions {
  /** For the connect and the TLS handshake together. */
  readonly timeoutMs: number
  /** Aborting destroys the socket and rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined
  /**
   * TLS from the first byte (implicit TLS). `servername` defaults to the host when it is a name;
   * certificates are verified against the system's CAs unless `ca` or `rejectUnauthorized` say otherwise.
   */
  readonly tls?: Omit<ConnectionOptions, 'host' | 'port' | 'path' | 'socket'> | undefined
}

/** A connection that failed or ran out of time; `code` is the system's (`ECONNREFUSED`) or ours. */
export class NetError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'NetError'
    this.code = code
  }
}

export const describeTarget = (t: ConnectTarget): string =>
  'path' in t ? t.path : t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`

/**
 * A service address from the configuration: a path with a `/` is a Unix socket; otherwise
 * `host:port`, `[v6]:port`, or a host alone with `defaultPort`. Throws on anything else.
 * @example parseTarget('/run/spamd.sock', 783) // { path: '/run/spamd.sock' }
 * @example parseTarget('[::1]:3310', 3310)     // { host: '::1', port: 3310 }
 */
export function parseTarget(spec: string, defaultPort: number): ConnectTarget {
  if (spec.includes('/')) return { path: spec }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([\w.-]+))(?::(\d{1,5}))?$/.exec(spec)
  const port = m?.[3] === undefined ? defaultPort : Number(m[3])
  const host = m?.[1] ?? m?.[2]
  if (host === undefined || !(port >= 1 && port <= 65535))
    throw new Error(`expected a socket path, host:port or [IPv6]:port, got "${spec}"`)
  return { host, port }
}

const isIpLiteral = (host: string) => /^[\d.]+$/.test(host) || host.includes(':')

/**
 * @example
 *   const socket = await connect({ host: '127.0.0.1', port: 783 }, { timeoutMs: 2_000, signal: ctx.signal })
 */
export function connect(target: ConnectTarget, opts: ConnectOptions): Promise<Socket> {
  const { signal } = opts
  if (signal?.aborted) return Promise.reject(signal.reason)
  const where = describeTarget(target)
  return new Promise<Socket>((resolve, reject) => {
    const address = 'path' in target ? { path: target.path } : { host: target.host, port: target.port }
    const servername = opts.tls?.servername ?? ('host' in target && !isIpLiteral(target.host) ? target.host : undefined)
    const socket: Socket =
      opts.tls === undefined
        ? tcpConnect(address)
        : tlsConnect({ ...opts.tls, ...address, ...(servername === undefined ? {} : { servername }) })
    const ready = opts.tls === undefined ? 'connect' : 'secureConnect'
    let settled = false
    const finish = (err?: unknown) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      socket.off(ready, onReady)
      socket.off('error', onError)
      if (err === undefined) {
        resolve(socket)
        return
      }
      socket.destroy()
      reject(err)
    }
    const onReady = () => finish()
    const onError = (e: NodeJS.ErrnoException) =>
      finish(new NetError(e.code ?? 'EIO', `connect to ${where}: ${e.message}`, { cause: e }))
    const onAbort = () => finish(signal?.reason)
    const timer = setTimeout(
      () => finish(new NetError('ETIMEDOUT', `connect to ${where}: no connection within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    )
    socket.on('error', () => {})
    socket.once(ready, onReady)
    socket.once('error', onError)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
