/**
 * The front door: listeners (IPv4/IPv6, roles smtp/submission/smtps), connection limits
 * (total and per client address, refused with 421 4.3.2 rather than a silent stall),
 * implicit TLS, and hand-over of each connection to a Session. A socket error never
 * takes the server down. Drain on close: stop accepting, let sessions finish, then 421.
 */
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { ConnectionsFromIp, ForwarderTrusted, type ProxiedConnection, ProxyInfo } from '../host/connection-keys.ts'
import type { ListenerRole, Peer, TlsInfo } from '../host/context.ts'
import { unmapIPv4 } from '../net/ip.ts'
import { renderReply, reply } from '../protocol/reply.ts'
import { Session } from '../session/session.ts'
import { SessionMetrics } from '../session/session-metrics.ts'
import { ConnectionMetrics, type RefusalReason } from './connection-metrics.ts'
import { implicitTls, refuse, settingsForRole, settledWithin } from './front-door.ts'
import { BoundListeners, type ListenerInfoFull, type ListenerSpec } from './listeners.ts'
import { defaultMaxHeader, looksLikeProxyHeader } from './proxy-protocol.ts'
import { readProxyHeader } from './proxy-reader.ts'
import { RecentVerdicts } from './recent-verdicts.ts'
import type { Runtime } from './runtime.ts'

export type { ListenerSpec }

/** What a drain did: sessions that ended by themselves, and those closed with 421. */
export interface DrainResult {
  readonly finished: number
  readonly forced: number
}

export interface ServerLimits {
  /** Open connections at once (0 = unlimited). */
  readonly maxConnections: number
  /** Open connections from one client address (0 = unlimited). */
  readonly maxConnectionsPerIp: number
  /** A trusted proxy must send its PROXY header within this time. */
  readonly proxyTimeoutMs: number
  /** Largest PROXY v2 header accepted, TLVs included (v1 is at most 107 bytes). */
  readonly proxyMaxHeader: number
  /** A connection refused with 421 is closed at the latest this long after the reply. */
  readonly refusalLingerMs: number
  /** Refusals and accepted messages kept for the status page (admin_recent_verdicts; 0: none). */
  readonly recentVerdicts: number
}

export const defaultServerLimits: ServerLimits = {
  maxConnections: 1000,
  maxConnectionsPerIp: 50,
  proxyTimeoutMs: 10_000,
  proxyMaxHeader: defaultMaxHeader,
  refusalLingerMs: 2000,
  recentVerdicts: 100,
}

const tooMany = renderReply(reply(421, '4.3.2', 'Too many connections, try again later'))
const tooManyFromYou = renderReply(reply(421, '4.7.0', 'Too many connections from your address, try again later'))
const proxyRefused = renderReply(
  reply(421, '4.7.0', 'PROXY protocol header from an untrusted address; closing connection'),
)

/** Who a session serves, and how it came in. */
export interface SessionStart {
  readonly listener: { name: string; role: ListenerRole }
  readonly remote: Peer
  readonly local: Peer
  /** Set when the stream is already TLS (implicit TLS done by serveConnection). */
  readonly tlsInfo?: TlsInfo | undefined
  readonly relayClient?: boolean
  /**
   * Open connections from this client address, this one included (1 in stdio mode); default:
   * this server's count when the session starts (after an implicit-TLS handshake).
   */
  readonly connectionsFromIp?: number
  readonly remoteHost?: string | undefined
  readonly proxied?: ProxiedConnection | undefined
  /** Close with 421 if the client's first bytes are a PROXY header (it is not trusted). */
  readonly refuseProxyHeader?: boolean
}

let connectionCounter = 0
const connectionId = (): string => `${process.pid.toString(36)}.${(++connectionCounter).toString(36)}`

export class SmtpServer {
  #runtime: Runtime
  readonly limits: ServerLimits
  readonly #listeners: BoundListeners[] = []
  /** Open sessions, each with its run: settled once the session has ended and is cleaned up. */
  readonly #sessions = new Map<Session, Promise<void>>()
  readonly #perIp = new Map<string, number>()
  #closing = false
  readonly recentVerdicts: RecentVerdicts
  #connectionMetrics: ConnectionMetrics
  /** Per listener name, bound in the registry #connectionMetrics uses. */
  readonly #sessionMetrics = new Map<string, SessionMetrics>()

  constructor(runtime: Runtime, limits: Partial<ServerLimits> = {}) {
    this.#runtime = runtime
    this.limits = { ...defaultServerLimits, ...limits }
    this.recentVerdicts = new RecentVerdicts(this.limits.recentVerdicts)
    this.#connectionMetrics = new ConnectionMetrics(runtime.provided.metrics)
  }

  /** Whether close() was called: the server accepts nothing more. */
  get draining(): boolean {
    return this.#closing
  }

  /** The open sessions, oldest first. */
  sessions(): IterableIterator<Session> {
    return this.#sessions.keys()
  }

  /** The metrics of the running configuration's registry (the process's: the same across reloads). */
  #metricsFor(listener: string): { connections: ConnectionMetrics; session: SessionMetrics } {
    const registry = this.#runtime.provided.metrics
    if (!this.#connectionMetrics.uses(registry)) {
      this.#connectionMetrics = new ConnectionMetrics(registry)
      this.#sessionMetrics.clear()
    }
    let session = this.#sessionMetrics.get(listener)
    if (session === undefined) {
      const onVerdict = this.limits.recentVerdicts > 0 ? this.recentVerdicts.add : undefined
      this.#sessionMetrics.set(listener, (session = new SessionMetrics(registry, listener, onVerdict)))
    }
    return { connections: this.#connectionMetrics, session }
  }

  get runtime(): Runtime {
    return this.#runtime
  }

  get connectionCount(): number {
    return this.#sessions.size
  }

  /**
   * New connections use the new runtime; open sessions keep theirs. The old runtime's
   * plugins are closed once its last session ends. Returns the old one.
   */
  swapRuntime(next: Runtime): Runtime {
    const old = this.#runtime
    this.#runtime = next
    if ((this.#inUse.get(old) ?? 0) === 0) this.#retire(old)
    return old
  }

  readonly #inUse = new Map<Runtime, number>()

  /** SIGUSR1: the log files of the running configuration and of any older one sessions still use. */
  reopenLogs(): void {
    for (const runtime of new Set([this.#runtime, ...this.#inUse.keys()])) runtime.reopenLogs()
  }

  #retire(runtime: Runtime): void {
    this.#inUse.delete(runtime)
    runtime.close().catch((e: unknown) => this.#runtime.log.error(`closing the old configuration: ${String(e)}`))
  }

  /** Binds the listeners and serves them. */
  async listen(specs: readonly ListenerSpec[]): Promise<AddressInfo[]> {
    const bound = await BoundListeners.bind(specs, (name, e) =>
      this.#runtime.log.error(`listener ${name}: ${e.message}`),
    )
    this.serve(bound)
    return bound.addresses
  }

  /** Serves listeners bound earlier (before dropping privileges), held connections first. */
  serve(bound: BoundListeners): void {
    // Every listener's series exist from the start, at 0, rather than from its first client.
    for (const l of bound.servers) this.#metricsFor(l.info.name)
    this.#listeners.push(bound)
    bound.serve((socket, listener) => this.#accept(socket, listener))
  }

  /** Open connections from one address (what hosts_allow's max_conn_ip compares). */
  connectionsFrom(ip: string): number {
    return this.#perIp.get(unmapIPv4(ip)) ?? 0
  }

  /**
   * Accepted connections whose socket is not closed yet: what maxConnections limits. Counted
   * from accept, so connections still sending a PROXY header or in an implicit-TLS handshake
   * (up to tls_handshake_timeout) count too.
   */
  #accepted = 0

  #accept(socket: Socket, listener: ListenerInfoFull): void {
    const { connections } = this.#metricsFor(listener.name)
    connections.accepted(listener.name)
    if (this.#closing) {
      connections.refused(listener.name, 'draining')
      return void socket.destroy()
    }
    const { maxConnections } = this.limits
    if (maxConnections > 0 && this.#accepted >= maxConnections)
      return void this.#refuse(socket, listener, tooMany, 'max_connections')
    this.#accepted++
    connections.opened(listener.name)
    socket.once('close', () => {
      this.#accepted--
      connections.closed(listener.name)
    })
    const peer = { ip: unmapIPv4(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 }
    const local =
      listener.boundIp !== undefined
        ? { ip: unmapIPv4(listener.boundIp), port: listener.boundPort ?? 0 }
        : { ip: unmapIPv4(socket.localAddress ?? ''), port: socket.localPort ?? 0 }
    if (!this.#runtime.trust.proxy.contains(peer.ip)) {
      this.#admit(socket, listener, peer, local, undefined)
      return
    }
    // A trusted proxy: the real client is in the header (before any TLS), and limits apply to it.
    void readProxyHeader(socket, {
      timeoutMs: this.limits.proxyTimeoutMs,
      maxHeader: this.limits.proxyMaxHeader,
    }).then((r) => {
      if (!r.ok) {
        this.#runtime.log.notice(`PROXY protocol error from ${peer.ip}: ${r.reason}; closing`)
        connections.refused(listener.name, 'proxy_error')
        return void socket.destroy()
      }
      if (this.#closing) {
        connections.refused(listener.name, 'draining')
        return void socket.destroy()
      }
      const h = r.header
      const proxied: ProxiedConnection = { version: h.version, proxy: peer, tlvs: h.tlvs }
      if (h.command === 'local') return this.#admit(socket, listener, peer, local, proxied)
      this.#admit(
        socket,
        listener,
        { ...h.source, ip: unmapIPv4(h.source.ip) },
        { ...h.destination, ip: unmapIPv4(h.destination.ip) },
        proxied,
      )
    })
  }

  #admit(
    socket: Socket,
    listener: { name: string; role: ListenerRole },
    remote: Peer,
    local: Peer,
    proxied: ProxiedConnection | undefined,
  ): void {
    const ip = remote.ip
    const { maxConnectionsPerIp } = this.limits
    const fromIp = this.#perIp.get(ip) ?? 0
    if (maxConnectionsPerIp > 0 && fromIp >= maxConnectionsPerIp)
      return void this.#refuse(socket, listener, tooManyFromYou, 'max_connections_per_ip')
    this.#perIp.set(ip, fromIp + 1)
    void this.#start(socket, listener, remote, local, proxied).finally(() => {
      const n = (this.#perIp.get(ip) ?? 1) - 1
      if (n <= 0) this.#perIp.delete(ip)
      else this.#perIp.set(ip, n)
    })
  }

  /** An implicit-TLS client expects a TLS record: it gets no cleartext reply, only the close. */
  #refuse(socket: Socket, listener: { name: string; role: ListenerRole }, text: string, why: RefusalReason): void {
    this.#metricsFor(listener.name).connections.refused(listener.name, why)
    refuse(socket, listener.role === 'smtps' ? undefined : text, this.limits.refusalLingerMs)
  }

  async #start(
    socket: Socket,
    listener: { name: string; role: ListenerRole },
    remote: Peer,
    local: Peer,
    proxied: ProxiedConnection | undefined,
  ): Promise<void> {
    await this.serveConnection(socket, {
      listener,
      remote,
      local,
      proxied,
      // Only a direct client can smuggle a PROXY header; a proxied one already sent it.
      refuseProxyHeader: proxied === undefined,
    })
  }

  /**
   * Serves one connection on any duplex stream (an accepted socket, or stdin/stdout in stdio
   * mode) as its listener's role says: on smtps, the TLS handshake first (within
   * tls_handshake_timeout; a client that fails it is closed without a word), then the session.
   */
  async serveConnection(stream: Duplex, info: SessionStart): Promise<void> {
    if (info.listener.role !== 'smtps') return this.runSession(stream, info)
    const secured = await implicitTls(stream, this.#runtime)
    const { session: counted } = this.#metricsFor(info.listener.name)
    if (secured === undefined) counted.tlsFailed()
    else counted.tlsEstablished(secured.info)
    // A handshake that ends during a drain starts no session the drain would not wait for.
    if (secured === undefined || this.#closing) return void stream.destroy()
    await this.runSession(secured.socket, { ...info, tlsInfo: secured.info })
  }

  /** Runs one session on any duplex stream (a socket, or stdin/stdout in stdio mode). */
  async runSession(stream: Duplex, info: SessionStart): Promise<void> {
    const runtime = this.#runtime
    const session = new Session(stream, {
      id: connectionId(),
      settings: settingsForRole(runtime, info.listener.role),
      runner: runtime.runnerFor(info.listener),
      server: runtime.server,
      log: runtime.log,
      listener: info.listener,
      remote: info.remote,
      local: info.local,
      tls: runtime.services.tls,
      tlsContexts: runtime.tlsContexts,
      auth: runtime.auth,
      tlsInfo: info.tlsInfo,
      relayClient: info.relayClient ?? false,
      metrics: this.#metricsFor(info.listener.name).session,
    })
    session.connection.notes.set(ConnectionsFromIp, info.connectionsFromIp ?? this.connectionsFrom(info.remote.ip))
    if (info.proxied !== undefined) session.connection.notes.set(ProxyInfo, info.proxied)
    if (runtime.trust.xclient.contains(info.remote.ip)) session.connection.notes.set(ForwarderTrusted, true)
    if (info.refuseProxyHeader === true) {
      // Runs before the session's own listener on the same chunk; ending the stream here
      // makes the 421 the last reply (the session's answer to the chunk cannot be written).
      stream.prependOnceListener('data', (chunk: Buffer) => {
        if (!looksLikeProxyHeader(chunk)) return
        session.log.notice(`PROXY protocol header from untrusted ${info.remote.ip}; closing`)
        this.#metricsFor(info.listener.name).connections.refused(info.listener.name, 'untrusted_proxy')
        stream.end(proxyRefused)
      })
    }
    if (info.remoteHost !== undefined) session.connection.remoteHost = info.remoteHost
    this.#inUse.set(runtime, (this.#inUse.get(runtime) ?? 0) + 1)
    const run = this.#run(session, runtime)
    this.#sessions.set(session, run)
    await run
  }

  async #run(session: Session, runtime: Runtime): Promise<void> {
    try {
      await session.run()
    } catch (e) {
      runtime.log.error(`session crashed: ${(e as Error).stack ?? String(e)}`)
    } finally {
      this.#sessions.delete(session)
      const left = (this.#inUse.get(runtime) ?? 1) - 1
      this.#inUse.set(runtime, left)
      if (left === 0 && runtime !== this.#runtime) this.#retire(runtime)
    }
  }

  /** Stops accepting; waits up to graceMs for sessions to end, then closes them with 421. */
  async close(graceMs = 0): Promise<DrainResult> {
    this.#closing = true
    const open = this.#sessions.size
    for (const l of this.#listeners) l.close()
    await settledWithin(Promise.all(this.#sessions.values()), graceMs)
    const forced = this.#sessions.size
    await Promise.all([...this.#sessions.keys()].map((s) => s.shutdown()))
    // Bounded: a session that does not end within 5 s of its 421 is left to the process exit.
    await settledWithin(Promise.all(this.#sessions.values()), 5000)
    return { finished: Math.max(0, open - forced), forced }
  }
}
