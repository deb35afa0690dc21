/**
 * Listening sockets, bound before anything else so that privileged ports can be bound as root:
 * from HOST:PORT specs or from inherited descriptors (systemd socket activation, LISTEN_FDS).
 * Connections that arrive before the server is ready are held paused (no byte is read) and
 * handed over by `serve()`, so privileges can be dropped and the configuration loaded in between.
 * Security: sockets are created with pauseOnConnect, so no client byte is read before serve().
 */
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'
import type { ListenerInfo, ListenerRole } from '../host/context.ts'

export interface ListenerSpec {
  readonly host: string
  readonly port: number
  readonly role?: ListenerRole
  readonly name?: string
  /** An inherited listening descriptor (systemd) instead of host:port. */
  readonly fd?: number
}

export interface ListenerInfoFull {
  readonly name: string
  readonly role: ListenerRole
  /** The bound address when it is a specific one (not 0.0.0.0, ::, or inherited): every
   * connection's local address, known without a getsockname call per connection. */
  readonly boundIp?: string | undefined
  readonly boundPort?: number | undefined
}

export type ConnectionHandler = (socket: Socket, listener: ListenerInfoFull) => void

/** At most this many connections wait for a server that is still starting; more are dropped. */
const maxHeld = 1024

export class BoundListeners {
  readonly servers: readonly {
    readonly server: Server
    readonly info: ListenerInfoFull
    readonly address: AddressInfo
  }[]
  #handler: ConnectionHandler | undefined
  #held: { socket: Socket; info: ListenerInfoFull }[] = []

  private constructor(list: BoundListeners['servers']) {
    this.servers = list
  }

  /** Binds every spec in order; rejects (closing what was bound) if one fails. */
  static async bind(
    specs: readonly ListenerSpec[],
    onError: (name: string, e: Error) => void,
  ): Promise<BoundListeners> {
    const bound: { server: Server; info: ListenerInfoFull; address: AddressInfo }[] = []
    const self = new BoundListeners(bound)
    try {
      for (const spec of specs) {
        const info: { name: string; role: ListenerRole; boundIp?: string; boundPort?: number } = {
          name: '',
          role: spec.role ?? 'smtp',
        }
        // allowHalfOpen: a client's FIN (Exim shuts down its side after a pipelined QUIT) must not
        // end our side before the session wrote its replies; the session ends it.
        const server = createServer({ noDelay: true, pauseOnConnect: true, allowHalfOpen: true }, (socket) =>
          self.#accept(socket, info),
        )
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject)
          const done = () => {
            server.off('error', reject)
            resolve()
          }
          if (spec.fd !== undefined) server.listen({ fd: spec.fd }, done)
          else server.listen({ host: spec.host, port: spec.port }, done)
        })
        const address = server.address() as AddressInfo
        if (spec.role === undefined && spec.fd !== undefined) info.role = roleForPort(address.port)
        info.name = spec.name ?? `${info.role}:${address.port}`
        if (spec.fd === undefined && address.address !== '0.0.0.0' && address.address !== '::') {
          info.boundIp = address.address
          info.boundPort = address.port
        }
        server.on('error', (e) => onError(info.name, e))
        bound.push({ server, info, address })
      }
    } catch (e) {
      self.close()
      throw e
    }
    return self
  }

  get addresses(): AddressInfo[] {
    return this.servers.map((s) => s.address)
  }

  #accept(socket: Socket, info: ListenerInfoFull): void {
    socket.on('error', () => {})
    if (this.#handler !== undefined) this.#handler(socket, info)
    else if (this.#held.length >= maxHeld) socket.destroy()
    else this.#held.push({ socket, info })
  }

  /** Starts handing connections (held ones first) to the handler. */
  serve(handler: ConnectionHandler): void {
    this.#handler = handler
    const held = this.#held
    this.#held = []
    for (const h of held) if (!h.socket.destroyed) handler(h.socket, h.info)
  }

  /**
   * Stops accepting; open connections are not touched. Does not wait for net.Server's
   * 'close', which only comes once every connection has ended.
   */
  close(): void {
    for (const h of this.#held) h.socket.destroy()
    this.#held = []
    for (const s of this.servers) s.server.close()
  }
}

/**
 * systemd socket activation (sd_listen_fds(3)): LISTEN_PID must be ours; descriptors start at 3.
 * A socket's FileDescriptorName= (LISTEN_FDNAMES) that is a role (smtp, submission, smtps)
 * gives the role; otherwise port 465 is smtps, 587 submission, anything else smtp (decided
 * once the port is known, see roleForPort). The variables are removed, as sd_listen_fds does.
 */
export function socketActivationSpecs(env: NodeJS.ProcessEnv, pid: number): ListenerSpec[] | undefined {
  if (env.LISTEN_PID === undefined || env.LISTEN_FDS === undefined) return undefined
  if (Number(env.LISTEN_PID) !== pid) return undefined
  const count = Number(env.LISTEN_FDS)
  if (!Number.isInteger(count) || count < 1 || count > 64) return undefined
  const names = (env.LISTEN_FDNAMES ?? '').split(':')
  delete env.LISTEN_PID
  delete env.LISTEN_FDS
  delete env.LISTEN_FDNAMES
  const out: ListenerSpec[] = []
  for (let i = 0; i < count; i++) {
    const name = names[i]
    const role = name === 'smtp' || name === 'submission' || name === 'smtps' ? name : undefined
    out.push({ host: '', port: 0, fd: 3 + i, ...(role === undefined ? {} : { role }) })
  }
  return out
}

/**
 * The name and role a spec's listener will have, when they are known before it is bound (not
 * for an inherited socket, nor an unnamed port 0): what `--check` checks listener selectors against.
 */
export function plannedListenerInfo(spec: ListenerSpec): ListenerInfo | undefined {
  if (spec.fd !== undefined || (spec.port === 0 && spec.name === undefined)) return undefined
  const role = spec.role ?? 'smtp'
  return { name: spec.name ?? `${role}:${spec.port}`, role }
}

/** The role a listener on this port gets when none was given. */
export function roleForPort(port: number): ListenerRole {
  return port === 465 ? 'smtps' : port === 587 ? 'submission' : 'smtp'
}
