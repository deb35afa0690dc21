/**
 * The Redis connection behind the store, through @redis/client: one server, Sentinel (the
 * client follows the master) or Cluster (the client routes by slot). Set up to fail fast and
 * heal by itself: no offline queue (a command while disconnected rejects at once), a bounded
 * command queue, a deadline on every command (sent or not), and reconnection with a capped
 * back-off for as long as the store is open.
 */
import { createClient, createCluster, createSentinel } from '@redis/client'
import { storeScripts } from './redis-scripts.ts'
import type { RedisSpec } from './spec.ts'

/** The commands the store uses; the same on a client, a cluster and a sentinel. */
export interface RedisCommands {
  get(key: string): Promise<string | null>
  set(key: string, value: string, options?: { expiration?: { type: 'PX'; value: number } }): Promise<unknown>
  del(key: string): Promise<number>
  pTTL(key: string): Promise<number>
  storeIncr(key: string, by: string, ttl: string): Promise<number>
  storeCompareAndSet(key: string, present: string, expected: string, value: string, ttl: string): Promise<boolean>
  storeHit(key: string, now: string, windowMs: string): Promise<number>
  storeLease(
    key: string,
    holder: string,
    now: string,
    ttlMs: string,
    limit: string,
    mode: 'take' | 'drop',
  ): Promise<{ held: boolean; count: number }>
  scanIterator(options: { MATCH: string; COUNT: number }): AsyncIterable<string[]>
}

export interface RedisConnection {
  readonly commands: RedisCommands
  /** Resolves once connected; retries until then (or until closed). */
  readonly connected: Promise<void>
  close(): Promise<void>
}

/** The longest wait between two reconnection attempts. */
export const maxReconnectDelayMs = 2000
/** Commands waiting for the connection beyond this many are refused at once. */
const commandQueueLimit = 10_000

export function connectRedis(spec: RedisSpec, warn: (message: string) => void): RedisConnection {
  const socket = {
    connectTimeout: spec.connectTimeoutMs,
    reconnectStrategy: (retries: number) => Math.min(100 * (retries + 1), maxReconnectDelayMs),
  }
  const client = {
    ...(spec.username === undefined ? {} : { username: spec.username }),
    ...(spec.password === undefined ? {} : { password: spec.password }),
    disableOfflineQueue: true,
    commandsQueueMaxLength: commandQueueLimit,
    disableClientInfo: true,
  }
  const commandOptions = { timeout: spec.timeoutMs, rejectInFlight: true }
  const target =
    spec.mode === 'single'
      ? createClient({
          ...client,
          url: spec.url!,
          ...(spec.database === undefined ? {} : { database: spec.database }),
          socket,
          scripts: storeScripts,
          commandOptions,
        })
      : spec.mode === 'sentinel'
        ? createSentinel({
            name: spec.masterName!,
            sentinelRootNodes: spec.nodes.map((n) => ({ host: n.host, port: n.port })),
            nodeClientOptions: {
              ...client,
              ...(spec.database === undefined ? {} : { database: spec.database }),
              socket,
            },
            sentinelClientOptions: { disableOfflineQueue: true, socket },
            scripts: storeScripts,
            commandOptions,
          })
        : createCluster({
            rootNodes: spec.nodes.map((n) => ({ socket: { host: n.host, port: n.port } })),
            defaults: { ...client, socket },
            scripts: storeScripts,
            commandOptions,
          })

  // One warning per outage, not one per reconnection attempt.
  let healthy = true
  let closed = false
  target.on('error', (e: Error) => {
    if (!healthy || closed) return
    healthy = false
    warn(`store ${spec.display} unavailable: ${e.message || e.name}; reconnecting`)
  })
  const recovered = () => {
    if (healthy || closed) return
    healthy = true
    warn(`store ${spec.display} reconnected`)
  }
  target.on('ready', recovered)
  target.on('connect', recovered)

  // A client retries by itself inside connect(); a cluster whose seed nodes are all down
  // gives up, so try again until it answers or the store is closed.
  const connected = (async () => {
    for (let attempt = 0; !closed; attempt++) {
      try {
        await target.connect()
        return
      } catch (e) {
        if (closed) return
        if (healthy) {
          healthy = false
          warn(`store ${spec.display} unavailable: ${(e as Error).message}; reconnecting`)
        }
        await new Promise((r) => setTimeout(r, Math.min(100 * (attempt + 1), maxReconnectDelayMs)))
      }
    }
  })()

  return {
    commands: target as unknown as RedisCommands,
    connected,
    close: async () => {
      closed = true
      // close() lets commands in flight finish, but not past their deadline; destroy() then
      // releases what is left (it is also the only way out while disconnected).
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        target.close().catch(() => undefined),
        new Promise((r) => (timer = setTimeout(r, spec.timeoutMs))),
      ])
      clearTimeout(timer)
      if (target.isOpen) await target.destroy()
      await connected
    },
  }
}
