/**
 * The operator's choice of store, one line: `store <where> [name=value ...]`, e.g.
 *
 *   store sqlite:/var/lib/qtsmtpd/state.db max_size=512M
 *   store redis://:secret@10.0.0.5:6379/2 timeout=500ms
 *   store redis-sentinel://10.0.0.5:26379,10.0.0.6:26379/mymaster
 *   store redis-cluster://10.0.0.5:7000,10.0.0.6:7000
 *   store memory
 *
 * Parsed here into a typed spec; an error names the file and line of the setting.
 */
import { isAbsolute, resolve } from 'node:path'
import { sqliteDefaults } from './sqlite.ts'

export interface SpecOrigin {
  readonly file: string
  readonly line?: number | undefined
}

/** A store setting that cannot be used; reads like a ConfigError: `smtpd.conf:3: ...`. */
export class StoreSpecError extends Error {
  readonly code = 'SMTPD_ERR_CONFIG_VALUE'
  readonly file: string
  readonly line: number | undefined
  readonly text: string

  constructor(origin: SpecOrigin, text: string, options?: { cause?: unknown }) {
    super(`${origin.line === undefined ? origin.file : `${origin.file}:${origin.line}`}: ${text}`, options)
    this.name = 'StoreSpecError'
    this.file = origin.file
    this.line = origin.line
    this.text = text
  }
}

export interface RedisNodeAddress {
  readonly host: string
  readonly port: number
}

export type StoreSpec =
  | { readonly kind: 'memory' }
  | {
      readonly kind: 'sqlite'
      readonly file: string
      readonly busyTimeoutMs: number
      readonly maxBytes: number
      readonly sweepIntervalMs: number
    }
  | RedisSpec

export interface RedisSpec {
  readonly kind: 'redis'
  readonly mode: 'single' | 'sentinel' | 'cluster'
  /** single: the URL as given (redis:// or rediss://). */
  readonly url?: string | undefined
  /** sentinel: the sentinels; cluster: the seed nodes. */
  readonly nodes: readonly RedisNodeAddress[]
  /** sentinel: the monitored master's name. */
  readonly masterName?: string | undefined
  readonly username?: string | undefined
  readonly password?: string | undefined
  readonly database?: number | undefined
  /** Prefix of every key qtsmtpd writes, so Redis can be shared (default `qtsmtpd:`). */
  readonly prefix: string
  /** Per operation, queueing included. */
  readonly timeoutMs: number
  readonly connectTimeoutMs: number
  /** The spec for logs, password hidden. */
  readonly display: string
}

export const redisDefaults = { timeoutMs: 1000, connectTimeoutMs: 2000, prefix: 'qtsmtpd:' } as const

export const defaultStoreFile = 'qtsmtpd-state.db'

/**
 * @param text what follows `store` on the line
 * @param baseDir what a relative sqlite path is relative to
 */
export function parseStoreSpec(text: string, origin: SpecOrigin, baseDir: string): StoreSpec {
  const fail = (t: string): never => {
    throw new StoreSpecError(origin, t)
  }
  const [where, ...words] = text.trim().split(/\s+/)
  if (where === undefined || where === '')
    return fail('store: missing value (memory, sqlite:FILE or redis://HOST:PORT)')
  const options = new Map<string, string>()
  for (const w of words) {
    const eq = w.indexOf('=')
    if (eq <= 0) fail(`store: "${w}" is not name=value`)
    options.set(w.slice(0, eq), w.slice(eq + 1))
  }
  const take = <T>(name: string, parse: (v: string) => T | undefined, fallback: T, what: string): T => {
    const v = options.get(name)
    options.delete(name)
    if (v === undefined) return fallback
    const parsed = parse(v)
    return parsed === undefined ? fail(`store: ${name}=${v}: expected ${what}`) : parsed
  }
  const done = <T extends StoreSpec>(spec: T): T => {
    const unknown = [...options.keys()]
    if (unknown.length > 0) fail(`store: unknown option ${unknown.join(', ')} for ${spec.kind}`)
    return spec
  }

  if (where === 'memory') return done({ kind: 'memory' })
  if (where.startsWith('sqlite:')) {
    const path = where.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '')
    if (path === '') fail('store: sqlite: needs a file name, e.g. sqlite:/var/lib/qtsmtpd/state.db')
    return done({
      kind: 'sqlite',
      file: isAbsolute(path) ? path : resolve(baseDir, path),
      busyTimeoutMs: take('busy_timeout', parseDuration, sqliteDefaults.busyTimeoutMs, 'a duration (250ms, 1s)'),
      maxBytes: take('max_size', parseSize, sqliteDefaults.maxBytes, 'a size of at least 64K (512M, 2G)'),
      sweepIntervalMs: take('sweep_interval', parseDuration, sqliteDefaults.sweepIntervalMs, 'a duration (60s, 5m)'),
    })
  }
  const m = /^(rediss?|redis-sentinel|redis-cluster):\/\/(?:([^@/]*)@)?([^/]+)(?:\/([^/]*))?(?:\/([^/]*))?$/.exec(where)
  if (!m) return fail(`store: "${where}" is not memory, sqlite:FILE, redis://, redis-sentinel:// or redis-cluster://`)
  const [, scheme, auth, hosts, first, second] = m
  const credentials = parseAuth(auth)
  const nodes = hosts!
    .split(',')
    .map((h) => parseHostPort(h, scheme === 'redis-sentinel' ? 26379 : 6379) ?? fail(`store: bad host:port "${h}"`))
  const database = (t: string | undefined) =>
    t === undefined || t === ''
      ? undefined
      : /^\d{1,2}$/.test(t)
        ? Number(t)
        : fail(`store: bad database number "${t}"`)
  const common = {
    kind: 'redis' as const,
    nodes,
    username: credentials.username,
    password: credentials.password,
    prefix: take('prefix', (v) => v, redisDefaults.prefix as string, 'a key prefix'),
    timeoutMs: take('timeout', parseDuration, redisDefaults.timeoutMs as number, 'a duration (500ms, 1s)'),
    connectTimeoutMs: take('connect_timeout', parseDuration, redisDefaults.connectTimeoutMs as number, 'a duration'),
    display: where.replace(/:[^:@/]*@/, ':***@'),
  }
  if (scheme === 'redis' || scheme === 'rediss') {
    if (nodes.length !== 1)
      fail('store: redis:// takes one host; use redis-cluster:// or redis-sentinel:// for several')
    if (second !== undefined) fail(`store: bad redis URL "${where}"`)
    return done({ ...common, mode: 'single', url: where, database: database(first) })
  }
  if (scheme === 'redis-sentinel') {
    if (first === undefined || first === '')
      fail('store: redis-sentinel:// needs the master name: redis-sentinel://HOST:PORT/NAME')
    return done({ ...common, mode: 'sentinel', masterName: decodeURIComponent(first!), database: database(second) })
  }
  if (first !== undefined || second !== undefined)
    fail('store: redis-cluster:// takes no database (a cluster has only 0)')
  return done({ ...common, mode: 'cluster' })
}

function parseAuth(auth: string | undefined): { username?: string; password?: string } {
  if (auth === undefined) return {}
  const colon = auth.indexOf(':')
  const user = decodeURIComponent(colon < 0 ? auth : auth.slice(0, colon))
  const out: { username?: string; password?: string } = {}
  if (colon >= 0) out.password = decodeURIComponent(auth.slice(colon + 1))
  if (user !== '') out.username = user
  return out
}

function parseHostPort(text: string, defaultPort: number): RedisNodeAddress | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(text)
  if (!m) return undefined
  const port = m[2] === undefined ? defaultPort : Number(m[2])
  if (port < 1 || port > 65535) return undefined
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port }
}

/** `250ms`, `2s`, `5m`, `1h`; a bare number is seconds (as in smtpd.conf). */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,9})(ms|s|m|h)?$/.exec(text)
  if (!m) return undefined
  const unit = m[2] ?? 's'
  return Number(m[1]) * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000)
}

/** `65536`, `512K`, `256M`, `2G` in bytes; at least 64 KiB. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d{1,12})([KMG])?$/i.exec(text)
  if (!m) return undefined
  const n = Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] ?? ' ').toUpperCase())
  return n >= 65536 ? n : undefined
}
