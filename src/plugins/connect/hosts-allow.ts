/**
 * connect/hosts-allow (qpsmtpd `hosts_allow`): on pre-connection, refuses a client with more
 * than `max_conn_ip` open connections from its address (421 4.7.0), then applies the first
 * matching line of `config/hosts_allow`: `ip[/mask] RETURNCODE message` (RETURNCODE is a qpsmtpd
 * name: OK, DENY, DENYSOFT, DENY_DISCONNECT, DENYSOFT_DISCONNECT, DECLINED, DONE). IPv4 and IPv6
 * (qpsmtpd: IPv4 only), via net/cidr.ts. A bad line is a configuration error at start-up
 * (qpsmtpd skipped it). Connections are counted in the store, across every worker process and
 * (on Redis) every node, as leases: each open connection holds one and renews it while it
 * lasts, releases it when it ends, and one whose process died drops out when its lease runs
 * out. With karma loaded, its history moves the limit as in qpsmtpd (above 5: +3; 0 or less: 1).
 */
import { randomBytes } from 'node:crypto'
import { parseCidrList } from '../../config/cidr-list.ts'
import type { ConfigLine } from '../../config/config-dir.ts'
import { ConfigError, ConfigErrorCode } from '../../config/config-error.ts'
import { ConnectionsFromIp } from '../../host/connection-keys.ts'
import type { HookContext } from '../../host/context.ts'
import { KarmaHistory } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { HookMap } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import { opt } from '../../host/options.ts'
import { accept, defer, pass, reject, type Verdict } from '../../host/verdict.ts'
import type { Cidr, CidrList } from '../../net/cidr.ts'
import { type Store, StoreUnavailable } from '../../store/index.ts'

type Code = 'OK' | 'DENY' | 'DENYSOFT' | 'DENY_DISCONNECT' | 'DENYSOFT_DISCONNECT' | 'DECLINED' | 'DONE'
const codes = new Set<string>(['OK', 'DENY', 'DENYSOFT', 'DENY_DISCONNECT', 'DENYSOFT_DISCONNECT', 'DECLINED', 'DONE'])

export interface HostsAllowRule {
  readonly net: CidrList
  readonly cidr: Cidr
  readonly code: Code
  readonly message: string | undefined
}

/** Parses `config/hosts_allow` lines; throws a ConfigError naming the bad line. */
export function parseHostsAllow(lines: readonly ConfigLine[]): HostsAllowRule[] {
  return lines.map((l) => {
    const m = /^(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(l.text.trim())
    const bad = (why: string) =>
      new ConfigError(ConfigErrorCode.Syntax, l.file, l.line, `${why}: ${JSON.stringify(l.text)}`)
    if (!m) throw bad('expected "ip[/mask] RETURNCODE [message]"')
    const code = (m[2] as string).toUpperCase()
    if (!codes.has(code)) throw bad(`unknown return code ${m[2]} (OK, DENY, DENYSOFT, *_DISCONNECT, DECLINED, DONE)`)
    const net = parseCidrList([{ ...l, text: m[1] as string }])
    return { net, cidr: net.entries[0] as Cidr, code: code as Code, message: m[3]?.trim() || undefined }
  })
}

function verdictFor(rule: HostsAllowRule): Verdict {
  const text = rule.message
  switch (rule.code) {
    // DONE answers nothing before the greeting: like OK, it ends the pre-connection chain.
    case 'OK':
    case 'DONE':
      return accept()
    case 'DECLINED':
      return pass()
    case 'DENY':
    case 'DENY_DISCONNECT':
      return reject(text === undefined ? undefined : { text }, { disconnect: true })
    case 'DENYSOFT':
    case 'DENYSOFT_DISCONNECT':
      return defer(text === undefined ? undefined : { text }, { disconnect: true })
  }
}

/** This connection's lease on its address's connection count, while it is open. */
const Lease = defineKey<{ readonly key: string; readonly holder: string; readonly stop: AbortController } | undefined>(
  'hosts_allow/lease',
  { scope: 'connection', initial: undefined },
)

/** Why a lease's renewal stops; one value, so a connection's end builds no DOMException. */
const connectionEnded = new Error('connection ended')

/** qpsmtpd's karma_bump: more connections for good clients, one for the others. */
export function karmaLimit(max: number, history: number | undefined): number {
  if (history === undefined) return max
  if (history > 5) return max + 3
  return history <= 0 ? 1 : max
}

export default definePlugin({
  name: 'connect/hosts-allow',
  aliases: ['hosts_allow'],
  description: 'per-address connection limit (across workers and nodes) and the hosts_allow rules file',
  options: {
    max_conn_ip: opt.number({
      default: 0,
      min: 0,
      integer: true,
      description: 'open connections allowed from one address (0: no limit)',
    }),
    lease_seconds: opt.number({
      default: 60,
      min: 3,
      integer: true,
      description: 'how long the count keeps a connection whose process died (renewed every third of it)',
    }),
    on_error: opt.enum(['pass', 'defer'], {
      default: 'pass',
      description: "when the store cannot answer: count this process's connections only (pass) or refuse (421)",
    }),
  },
  setup({ options, config, store, clock, log }) {
    const rules = parseHostsAllow(config.located('hosts_allow'))
    // Connection ids are unique in a process; this makes them unique across processes and nodes.
    const node = randomBytes(6).toString('hex')
    const leaseMs = options.lease_seconds * 1000

    const tooMany = (ctx: HookContext, ip: string, open: number | string, max: number): Verdict => {
      ctx.result('fail', `too many connections from ${ip} (${open} > ${max})`)
      return defer(
        { code: 421, enhanced: '4.7.0', text: `Sorry, too many connections from ${ip}, try again later` },
        { disconnect: true },
      )
    }

    /** Keeps the lease alive until the connection ends; a failed renewal is retried at the next. */
    const renew = async (store: Store, key: string, holder: string, stop: AbortSignal) => {
      while (!stop.aborted) {
        try {
          await clock.sleep(Math.floor(leaseMs / 3), stop)
          await store.lease(key, holder, leaseMs)
        } catch (e) {
          if (stop.aborted) return
          if (!(e instanceof StoreUnavailable)) throw e
          log.warn(`connection lease not renewed: ${e.message}`)
        }
      }
    }

    /** This process's own count (a server built without a store, or the store is down). */
    const localLimit = (ctx: HookContext, ip: string, max: number): Verdict | undefined => {
      const open = ctx.get(ConnectionsFromIp)
      return open > max ? tooMany(ctx, ip, open, max) : undefined
    }

    /** Whether the client may open this connection, counted across processes. */
    const limit = async (ctx: HookContext, ip: string, max: number): Promise<Verdict | undefined> => {
      if (store === undefined) return localLimit(ctx, ip, max)
      const key = `conn:${ip}`
      const holder = `${node}.${ctx.connection.id}`
      try {
        const { held, count } = await store.lease(key, holder, leaseMs, max)
        if (!held) return tooMany(ctx, ip, `${count}+1`, max)
      } catch (e) {
        if (!(e instanceof StoreUnavailable)) throw e
        if (options.on_error === 'defer') {
          ctx.result('error', e.message)
          return defer(
            { code: 421, enhanced: '4.3.0', text: 'Connection limits unavailable, try again later' },
            { disconnect: true },
          )
        }
        ctx.log.warn(`connections from ${ip} counted in this process only: ${e.message}`)
        return localLimit(ctx, ip, max)
      }
      const stop = new AbortController()
      ctx.connection.notes.set(Lease, { key, holder, stop })
      renew(store, key, holder, stop.signal).catch((e: unknown) =>
        log.error(`connection lease: ${(e as Error).message}`),
      )
      return undefined
    }

    const preConnection: HookMap['preConnection'] = async (ctx) => {
      const ip = ctx.connection.remote.ip
      if (options.max_conn_ip > 0) {
        const max = karmaLimit(options.max_conn_ip, ctx.connection.notes.get(KarmaHistory))
        const refused = await limit(ctx, ip, max)
        if (refused !== undefined) return refused
      }
      for (const rule of rules) {
        if (!rule.net.contains(ip)) continue
        ctx.result(rule.code.startsWith('DENY') ? 'fail' : 'pass', `${rule.code} ${rule.message ?? ''}`.trim())
        return verdictFor(rule)
      }
      return pass()
    }

    const disconnect: HookMap['disconnect'] = async (ctx) => {
      const lease = ctx.connection.notes.get(Lease)
      if (lease === undefined) return
      lease.stop.abort(connectionEnded)
      try {
        await store?.releaseLease(lease.key, lease.holder)
      } catch (e) {
        if (!(e instanceof StoreUnavailable)) throw e
        ctx.log.warn(`connection lease not released (it runs out by itself): ${e.message}`)
      }
    }
    return { hooks: options.max_conn_ip > 0 ? { preConnection, disconnect } : { preConnection } }
  },
})
