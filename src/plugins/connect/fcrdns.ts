/**
 * connect/fcrdns (qpsmtpd `fcrdns`): forward-confirmed reverse DNS of the client at connect: its
 * PTR names (at most 10), then their A or AAAA records, all names at once. A name that resolves
 * back to the client's address becomes the connection's verified host name (the Received line's
 * `from`, rhsbl's `rdns`), is kept in the `Fcrdns` key for later plugins, and is reported as
 * `iprev=` in Authentication-Results (RFC 8601 §3) unless a plugin reported iprev already.
 * With `reject 1`, a client without a confirmed name is refused (421 by default, reject_type
 * temp); a DNS failure never refuses permanently (on_error).
 */
import { isDomainName } from '../../dns/dnsbl.ts'
import type { DnsResolver } from '../../dns/types.ts'
import { adjustKarma, isImmune, rejectAs, rejectOptions, rejectTypes } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { ConnectHook } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import { opt } from '../../host/options.ts'
import { defer, pass } from '../../host/verdict.ts'
import { addAuthResult, authResultsFor } from '../../mailauth/auth-results.ts'
import { iprevAuthResult } from '../../mailauth/iprev.ts'
import { formatIp, type IpAddress, normalizeIp, parseIp, reverseName } from '../../net/ip.ts'
import type { EnhancedCode } from '../../protocol/reply.ts'

export interface FcrdnsResult {
  /** RFC 8601 §2.7.3: pass, fail (names, none confirming), permerror (no PTR), temperror. */
  readonly result: 'pass' | 'fail' | 'temperror' | 'permerror'
  readonly ip: string
  /** The verified name (pass), or the PTR names found. */
  readonly names: readonly string[]
  /**
   * qpsmtpd's relaxed match: a PTR name resolves into the client's /24 (IPv4) or /64 (IPv6),
   * as a pool of mail servers often does. Not a pass (nothing is verified), but not refused.
   */
  readonly networkMatch: boolean
}

/** The client's FCrDNS result, set at connect by fcrdns (undefined when it did not run). */
export const Fcrdns = defineKey<FcrdnsResult | undefined>('connect/fcrdns', { scope: 'connection', initial: undefined })

const MAX_NAMES = 10

const sameNetwork = (a: IpAddress, b: IpAddress): boolean =>
  a.family === 4 && b.family === 4
    ? a.value >>> 8 === b.value >>> 8
    : a.family === 6 && b.family === 6 && a.value >> 64n === b.value >> 64n

export async function checkFcrdns(
  dns: DnsResolver,
  ipText: string,
  opts: { readonly signal?: AbortSignal | undefined; readonly timeoutMs?: number | undefined } = {},
): Promise<FcrdnsResult> {
  const ip = normalizeIp(ipText) ?? ipText
  const client = parseIp(ip)
  const ptrName = client === undefined ? undefined : reverseName(client)
  const none = { ip, names: [], networkMatch: false }
  if (client === undefined || ptrName === undefined) return { result: 'permerror', ...none }
  const ptr = await dns.query(ptrName, 'PTR', opts)
  if (ptr.kind === 'timeout' || ptr.kind === 'servfail') return { result: 'temperror', ...none }
  if (ptr.kind !== 'records') return { result: 'permerror', ...none }
  const names = [...new Set(ptr.records.map((n) => n.replace(/\.$/, '').toLowerCase()))].slice(0, MAX_NAMES)
  const type = client.family === 4 ? 'A' : 'AAAA'
  // A PTR of "localhost" (or another bare name) confirms nothing, whatever it resolves to.
  const usable = names.filter((n) => isDomainName(n) && n.includes('.'))
  const forward = await Promise.all(usable.map((n) => dns.query(n, type, opts)))
  const addresses = forward.map((a) => (a.kind === 'records' ? a.records.flatMap((r) => parseIp(r) ?? []) : []))
  const confirmed = usable.find((_, i) => addresses[i]?.some((a) => formatIp(a) === ip))
  if (confirmed !== undefined) return { result: 'pass', ip, names: [confirmed], networkMatch: true }
  const networkMatch = addresses.some((list) => list.some((a) => sameNetwork(a, client)))
  // A name we could not resolve might have confirmed: that is temporary, not a fail.
  if (forward.some((a) => a.kind === 'timeout' || a.kind === 'servfail'))
    return { result: 'temperror', ip, names, networkMatch }
  return { result: 'fail', ip, names, networkMatch }
}

/** RFC 7372 §3.3: X.7.25 "Reverse DNS validation failed". */
const CONNECT_CODES: { perm: [number, EnhancedCode]; temp: [number, EnhancedCode] } = {
  perm: [554, '5.7.25'],
  temp: [421, '4.7.25'],
}

export default definePlugin({
  name: 'connect/fcrdns',
  aliases: ['fcrdns'],
  description: "forward-confirmed reverse DNS: the client's verified host name, iprev, optionally refused without one",
  options: {
    reject: opt.enum(['0', '1', 'naughty'], {
      default: '0',
      description: '0 logs only, 1 refuses clients without forward-confirmed reverse DNS, naughty defers to naughty',
    }),
    reject_type: opt.enum(rejectTypes, { default: 'temp', description: 'how a refusal is sent' }),
    loglevel: rejectOptions.loglevel,
    timeout: opt.number({ default: 5, min: 0.1, description: 'seconds for each lookup (at most dns_timeout)' }),
    on_error: opt.enum(['defer', 'pass'], {
      default: 'defer',
      description: 'with reject 1, a DNS failure: defer (421) or pass',
    }),
  },
  requires: ['dns'],
  timeoutMs: 30_000,
  setup({ options, dns }) {
    const connect: ConnectHook = async (ctx) => {
      if (isImmune(ctx)) {
        ctx.result('skip', 'immune')
        return pass()
      }
      const ip = ctx.connection.remote.ip
      const check = await checkFcrdns(dns, ip, { signal: ctx.signal, timeoutMs: options.timeout * 1000 })
      ctx.set(Fcrdns, check)
      if (authResultsFor(ctx, 'iprev').length === 0) addAuthResult(ctx, iprevAuthResult(check))
      const names = check.names.join(' ')
      switch (check.result) {
        case 'pass':
          ctx.connection.remoteHost ??= check.names[0]
          adjustKarma(ctx, 1)
          ctx.result('pass', names)
          return pass()
        case 'temperror':
          ctx.result('error', `DNS failure ${names}`.trim())
          if (options.reject === '1' && options.on_error === 'defer')
            return defer(
              { code: 421, enhanced: '4.4.3', text: 'Reverse DNS cannot be checked now, try again later' },
              { disconnect: true },
            )
          return pass()
        case 'permerror':
        case 'fail': {
          if (check.networkMatch) {
            ctx.result('pass', `network match ${names}`)
            return pass()
          }
          adjustKarma(ctx, -1)
          const text =
            check.result === 'permerror'
              ? `Your address ${ip} has no reverse DNS (PTR)`
              : `The reverse DNS of ${ip} (${names}) does not resolve back to it`
          return rejectAs(ctx, options, text, CONNECT_CODES)
        }
      }
    }
    return { hooks: { connect } }
  },
})
