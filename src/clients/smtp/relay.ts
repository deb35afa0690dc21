/**
 * Relay: next hops in order with failover, a session pool, and the client's identity passed
 * on (XCLIENT/XFORWARD). Opens a session ready for MAIL; whatever fails before MAIL (refused,
 * timeout, TLS, AUTH, greeting, an extension the message needs) moves to the next hop. Once
 * MAIL is sent there is no failover: the hop has answered for this message.
 *
 * A pooled session the hop closed while idle is detected on first use and replaced once.
 */
import { OutboundError } from './errors.ts'
import { SessionPool } from './pool.ts'
import { type ClientIdentity, type ClientOptions, SmtpClient } from './smtp-client.ts'
import { checkCompatible, type OutboundEnvelope } from './transaction.ts'
import { describeTarget, type Target } from './wire.ts'

export type IdentityMode = 'none' | 'xclient' | 'xforward'

export interface RelayOptions {
  readonly hops: readonly Target[]
  readonly client: ClientOptions
  readonly identity: { readonly xclient: boolean; readonly xforward: boolean }
  readonly pool: { readonly size: number; readonly idleMs: number; readonly maxMessages: number }
}

export interface OpenSession {
  readonly client: SmtpClient
  readonly key: string
}

export interface RelayLog {
  info(m: string): void
  warn(m: string): void
}

/** Parses `host`, `host:port`, `[v6]:port`, `unix:/path` or `/path`. */
export function parseHop(s: string, defaultPort: number): Target {
  if (s.startsWith('unix:')) return { path: s.slice(5) }
  // Host names never hold a slash: `var/run/lmtp` is a (relative) socket path.
  if (s.includes('/')) return { path: s }
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(s)
  const m = v6 ?? /^([A-Za-z0-9.-]+)(?::(\d+))?$/.exec(s)
  if (m === null) throw new Error(`bad next hop "${s}": expected host[:port], [ipv6]:port or unix:/path`)
  const port = m[2] === undefined ? defaultPort : Number(m[2])
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad port in next hop "${s}"`)
  return { host: m[1] as string, port }
}

export class Relay {
  readonly options: RelayOptions
  readonly pool: SessionPool

  constructor(options: RelayOptions) {
    if (options.hops.length === 0) throw new Error('no next hop configured')
    this.options = options
    this.pool = new SessionPool(options.pool)
  }

  /**
   * A session on the first hop that works, with our client's identity sent and the message
   * checked against the hop's extensions. Throws the last hop's error when none works.
   */
  async open(env: OutboundEnvelope | undefined, id: ClientIdentity, log: RelayLog): Promise<OpenSession> {
    let last: unknown
    for (const target of this.options.hops) {
      const key = describeTarget(target)
      for (let attempt = 0; attempt < 2; attempt++) {
        let client: SmtpClient | undefined
        try {
          client = await this.pool.acquire(
            key,
            () => SmtpClient.connect(target, this.options.client),
            this.options.client.timeouts.connectMs,
          )
          const reused = client.messages > 0
          try {
            await this.#introduce(client, id)
            if (env !== undefined) checkCompatible(client, env)
          } catch (e) {
            // A reused session may have been closed by the hop while idle: retry once, fresh.
            if (reused && e instanceof OutboundError && (e.kind === 'dropped' || e.kind === 'timeout')) {
              this.pool.release(key, client, false)
              client = undefined
              continue
            }
            throw e
          }
          return { client, key }
        } catch (e) {
          if (client !== undefined) this.pool.release(key, client, false)
          if (e instanceof OutboundError && e.kind === 'reply' && e.reply !== undefined && e.step === 'MAIL') throw e
          last = e
          log.warn(`next hop ${key}: ${(e as Error).message}`)
          break
        }
      }
    }
    throw last ?? new OutboundError('refused', 'connect', 'no next hop reachable')
  }

  async #introduce(client: SmtpClient, id: ClientIdentity): Promise<void> {
    if (this.options.identity.xclient && client.has('XCLIENT')) await client.xclient(id)
    else if (this.options.identity.xforward && client.has('XFORWARD')) await client.xforward(id)
    else if (!client.usable) throw new OutboundError('dropped', 'MAIL', 'connection closed')
  }

  release(s: OpenSession, reusable: boolean): void {
    this.pool.release(s.key, s.client, reusable)
  }

  close(): Promise<void> {
    return this.pool.close()
  }
}
