/**
 * Options shared by queue/smtp-forward and queue/lmtp, and their translation into a Relay.
 * Timeouts are in seconds, as in qpsmtpd's configuration; everything is checked at start-up.
 */
import { readFileSync } from 'node:fs'
import { parseHop, Relay } from '../../../clients/smtp/relay.ts'
import type { TlsMode } from '../../../clients/smtp/smtp-client.ts'
import type { Target } from '../../../clients/smtp/wire.ts'
import { opt } from '../../../host/options.ts'
import type { Paths } from '../../../host/paths.ts'

export const outboundOptions = {
  hosts: opt.list({ default: [], description: 'next hops in failover order: host[:port], [v6]:port or unix:/path' }),
  tls: opt.enum(['none', 'opportunistic', 'required'], { default: 'opportunistic', description: 'STARTTLS policy' }),
  tls_verify: opt.boolean({ default: true, description: 'check the next hop certificate (chain and name)' }),
  tls_servername: opt.optionalString({ description: 'name for SNI and the certificate check' }),
  tls_ca: opt.optionalString({ description: 'extra CA certificates (PEM file) to trust' }),
  auth_user: opt.optionalString({ description: 'AUTH user at the next hop (smarthost)' }),
  auth_password: opt.optionalString({ description: 'AUTH password at the next hop' }),
  auth_without_tls: opt.boolean({ default: false, description: 'allow AUTH over an unencrypted session' }),
  xforward: opt.boolean({ default: true, description: 'send XFORWARD when the next hop offers it' }),
  helo: opt.optionalString({ description: 'our name in EHLO/LHLO (default: config me)' }),
  connect_timeout: opt.number({ default: 30, min: 0.1, max: 600, description: 'seconds to connect' }),
  command_timeout: opt.number({ default: 60, min: 0.1, max: 600, description: 'seconds per command reply' }),
  data_timeout: opt.number({
    default: 120,
    min: 0.1,
    max: 600,
    description: 'seconds without progress writing content',
  }),
  data_done_timeout: opt.number({
    default: 300,
    min: 0.1,
    max: 600,
    description: 'seconds for the reply after the final dot',
  }),
  pool_size: opt.number({ default: 10, min: 0, max: 1000, integer: true, description: 'sessions kept open (0: none)' }),
  pool_idle: opt.number({ default: 30, min: 0.1, max: 3600, description: 'seconds an idle session is kept' }),
  pool_max_messages: opt.number({ default: 100, min: 0, integer: true, description: 'messages per session (0: any)' }),
} as const

type OutboundOptionValues = {
  readonly [K in keyof typeof outboundOptions]: (typeof outboundOptions)[K] extends { check(v: unknown): infer T }
    ? T
    : never
}

export interface RelaySetup {
  readonly protocol: 'smtp' | 'lmtp'
  readonly hops: readonly Target[]
  readonly xclient: boolean
  readonly me: string
  /** For `tls_ca`: a relative path is taken from the install directory. */
  readonly paths: Paths
}

export function buildRelay(o: OutboundOptionValues, s: RelaySetup): Relay {
  if ((o.auth_user === undefined) !== (o.auth_password === undefined))
    throw new Error('auth_user and auth_password go together')
  const sec = (n: number) => Math.round(n * 1000)
  return new Relay({
    hops: s.hops,
    client: {
      protocol: s.protocol,
      helo: o.helo ?? s.me,
      tls: o.tls as TlsMode,
      tlsVerify: o.tls_verify,
      tlsServername: o.tls_servername,
      tlsCa: o.tls_ca === undefined ? undefined : readFileSync(s.paths.resolve(o.tls_ca)),
      auth: o.auth_user === undefined ? undefined : { user: o.auth_user, password: o.auth_password ?? '' },
      authWithoutTls: o.auth_without_tls,
      timeouts: {
        connectMs: sec(o.connect_timeout),
        commandMs: sec(o.command_timeout),
        dataBlockMs: sec(o.data_timeout),
        dataDoneMs: sec(o.data_done_timeout),
      },
    },
    identity: { xclient: s.xclient, xforward: o.xforward },
    pool: { size: o.pool_size, idleMs: sec(o.pool_idle), maxMessages: o.pool_max_messages },
  })
}

/**
 * Next hops from `hosts`, or else from `host` and `port` / `socket`. A relative socket path
 * (`unix:var/lmtp`) is taken from the install directory, as every path in the configuration.
 */
export function hopsFrom(
  hosts: readonly string[],
  single: { host?: string | undefined; port: number; socket?: string | undefined },
  paths: Paths,
): Target[] {
  const placed = (t: Target): Target => ('path' in t ? { path: paths.resolve(t.path) } : t)
  if (hosts.length > 0) return hosts.map((h) => placed(parseHop(h, single.port)))
  if (single.socket !== undefined) return [placed({ path: single.socket })]
  if (single.host !== undefined) return [placed(parseHop(single.host, single.port))]
  throw new Error('no next hop: give host [port], hosts h1:25,h2:25 or socket /path')
}
