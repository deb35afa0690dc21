/**
 * mail/resolvable_fromhost (qpsmtpd `resolvable_fromhost`, `async/resolvable_fromhost`, and the
 * old `require_resolvable_fromhost`): the sender's domain must be able to receive mail (the
 * bounces we may owe it), as RFC 5321 §5.1 finds its servers: MX records, else A/AAAA (the
 * implicit MX). MX, A and AAAA are asked at once, then every MX host's addresses at once. An
 * address in `invalid_resolvable_fromhost` does not count. A null MX (RFC 7505) is refused
 * with 550 5.7.27; an unresolvable domain gets qpsmtpd's reject_type (temp: 450 4.1.8); a DNS
 * failure 451 4.4.3 (never 5xx), and an MX lookup that fails is not followed by A (§5.1).
 */

import { parseCidrList } from '../../config/cidr-list.ts'
import type { DnsAnswer, DnsResolver } from '../../dns/types.ts'
import type { HookContext } from '../../host/context.ts'
import {
  adjustKarma,
  isImmune,
  type RejectPolicy,
  rejectAs,
  rejectOptions,
  rejectTypes,
} from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { MailHook } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import { opt } from '../../host/options.ts'
import { defer, pass, type Verdict } from '../../host/verdict.ts'
import { normalizeIp } from '../../net/ip.ts'

/**
 * What the check found (qpsmtpd's `resolvable_fromhost` note): `mx`, `a` (implicit MX), `ip`
 * (an address literal), `null` (the null sender), `whitelist` (immune), `null MX`, or a failure.
 */
export const ResolvableFromhost = defineKey<string | undefined>('resolvable_fromhost', {
  scope: 'transaction',
  initial: undefined,
})
/** The sender's domain that was checked (qpsmtpd's `resolvable_fromhost_host` note). */
export const ResolvableFromhostHost = defineKey<string | undefined>('resolvable_fromhost_host', {
  scope: 'transaction',
  initial: undefined,
})

/** RFC 5321 §5.1 bounds nothing, but a domain with more MX hosts than this is not checked further. */
const MAX_MX = 10

type Outcome =
  | { readonly kind: 'ok'; readonly note: 'mx' | 'a'; readonly detail: string }
  | { readonly kind: 'fail'; readonly note: string; readonly text: string }
  | { readonly kind: 'nullmx' }
  | { readonly kind: 'dns-error'; readonly detail: string }

const failed = (a: DnsAnswer<unknown>): boolean => a.kind === 'timeout' || a.kind === 'servfail'
const detailOf = (name: string, a: DnsAnswer<unknown>): string =>
  `${name}: ${a.kind === 'servfail' ? a.detail : a.kind}`

async function resolvable(
  dns: DnsResolver,
  domain: string,
  usable: (ip: string) => boolean,
  q: { readonly signal?: AbortSignal | undefined; readonly timeoutMs?: number | undefined },
): Promise<Outcome> {
  const addressesOf = async (name: string) => {
    const literal = normalizeIp(name.replace(/^\[|\]$/g, ''))
    if (literal !== undefined) return { found: [literal], error: undefined }
    const [a, aaaa] = await Promise.all([dns.query(name, 'A', q), dns.query(name, 'AAAA', q)])
    const found = [a, aaaa].flatMap((x) => (x.kind === 'records' ? x.records : []))
    const error = [a, aaaa].find(failed)
    return { found, error: error === undefined ? undefined : detailOf(name, error) }
  }
  const [mx, implicit] = await Promise.all([dns.query(domain, 'MX', q), addressesOf(domain)])
  if (mx.kind === 'timeout' || mx.kind === 'servfail')
    return { kind: 'dns-error', detail: detailOf(`${domain} MX`, mx) }
  if (mx.kind === 'nxdomain')
    return { kind: 'fail', note: 'no such domain', text: `Sender domain ${domain} does not exist` }
  if (mx.kind === 'records') {
    const hosts = mx.records.map((r) => r.exchange.replace(/\.$/, '').toLowerCase())
    // RFC 7505 §3: one MX record, priority 0, exchange "." says the domain takes no mail.
    if (hosts.every((h) => h === '')) return { kind: 'nullmx' }
    const exchanges = [...new Set(hosts.filter((h) => h !== ''))].slice(0, MAX_MX)
    const resolved = await Promise.all(exchanges.map(addressesOf))
    const good = exchanges.find((_, i) => resolved[i]?.found.some(usable))
    if (good !== undefined) return { kind: 'ok', note: 'mx', detail: `${domain} has MX at ${good}` }
    const error = resolved.find((r) => r.error !== undefined)?.error
    if (error !== undefined) return { kind: 'dns-error', detail: error }
    return { kind: 'fail', note: `invalid MX for ${domain}`, text: `Sender domain ${domain} has no usable MX host` }
  }
  if (implicit.found.some(usable)) return { kind: 'ok', note: 'a', detail: `${domain} has an address` }
  if (implicit.error !== undefined) return { kind: 'dns-error', detail: implicit.error }
  if (implicit.found.length > 0)
    return {
      kind: 'fail',
      note: `invalid address for ${domain}`,
      text: `Sender domain ${domain} has no usable address`,
    }
  return { kind: 'fail', note: `no MX or address for ${domain}`, text: `Sender domain ${domain} has no MX or address` }
}

export default definePlugin({
  name: 'mail/resolvable_fromhost',
  aliases: ['resolvable_fromhost', 'async/resolvable_fromhost', 'require_resolvable_fromhost'],
  description: 'refuse senders whose domain cannot receive mail (MX, else A/AAAA; RFC 7505 null MX)',
  options: {
    reject: rejectOptions.reject,
    reject_type: opt.enum(rejectTypes, { default: 'soft', description: 'how an unresolvable domain is refused' }),
    loglevel: rejectOptions.loglevel,
    timeout: opt.number({ default: 30, min: 0.1, description: 'seconds for each lookup (at most dns_timeout)' }),
    on_error: opt.enum(['defer', 'pass'], {
      default: 'defer',
      description: 'a DNS failure: defer (451 4.4.3) or pass',
    }),
  },
  requires: ['dns'],
  timeoutMs: 60_000,
  setup({ options, config, dns }) {
    const invalid = config.live('invalid_resolvable_fromhost', (lines) =>
      parseCidrList(lines.map((l) => ({ ...l, text: l.text.trim() }))),
    )
    const refuse = (ctx: HookContext, policy: RejectPolicy, text: string, note: string): Verdict => {
      adjustKarma(ctx, -1)
      ctx.transaction?.notes.set(ResolvableFromhost, note)
      return rejectAs(ctx, policy, text, { perm: [550, '5.1.8'], temp: [450, '4.1.8'] })
    }
    // A null MX is the domain's own statement: refused permanently whatever reject_type says.
    const nullMxPolicy: RejectPolicy = {
      reject: options.reject,
      reject_type:
        options.reject_type === 'temp_disconnect' || options.reject_type === 'disconnect' ? 'disconnect' : 'perm',
    }

    const mail: MailHook = async (ctx, from) => {
      const txn = ctx.transaction
      if (isImmune(ctx)) {
        txn.notes.set(ResolvableFromhost, 'whitelist')
        ctx.result('skip', 'immune')
        return pass()
      }
      const address = from.address
      if (address === null) {
        txn.notes.set(ResolvableFromhost, 'null')
        ctx.result('pass', 'null sender')
        return pass()
      }
      const domain = address.domain?.toLowerCase()
      if (domain === undefined) return refuse(ctx, options, 'FQDN required in the envelope sender', 'unparsable host')
      txn.notes.set(ResolvableFromhostHost, domain)
      if (domain.startsWith('[')) {
        txn.notes.set(ResolvableFromhost, 'ip')
        adjustKarma(ctx, -1)
        ctx.result('skip', `${domain} is an IP`)
        return pass()
      }
      const usable = (ip: string) => !invalid.current().contains(ip)
      const outcome = await resolvable(dns, domain, usable, { signal: ctx.signal, timeoutMs: options.timeout * 1000 })
      switch (outcome.kind) {
        case 'ok':
          txn.notes.set(ResolvableFromhost, outcome.note)
          ctx.result('pass', outcome.detail)
          return pass()
        case 'fail':
          return refuse(ctx, options, outcome.text, outcome.note)
        case 'nullmx':
          adjustKarma(ctx, -1)
          txn.notes.set(ResolvableFromhost, 'null MX')
          return rejectAs(ctx, nullMxPolicy, `Sender domain ${domain} has a null MX: it takes no mail`, {
            perm: [550, '5.7.27'],
          })
        case 'dns-error':
          ctx.log.warn(`DNS failure: ${outcome.detail}`)
          ctx.result('error', outcome.detail)
          if (options.on_error === 'pass' || options.reject === '0') return pass()
          return defer({
            code: 451,
            enhanced: '4.4.3',
            text: `Temporary address resolution failure for ${domain}, try again later`,
          })
      }
    }
    return { hooks: { mail } }
  },
})
