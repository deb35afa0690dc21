/**
 * rcpt/ok (qpsmtpd `rcpt_ok`): accepts recipients in the domains we host (`me`, `rcpthosts`
 * with `.domain` for subdomains, a plain-text `morercpthosts`) and everything from relay
 * clients; refuses the rest with 550 5.7.1 "Relaying denied". Load it last among rcpt plugins.
 * Bare `<postmaster>` is local (RFC 5321 §4.5.1); `u@[literal]` is local only when the literal
 * is the address the client connected to. Domains compare in normalized form (lower case, IDN
 * as A-labels). rcpthosts and morercpthosts take effect when edited (checked at most once a second);
 * qpsmtpd's morercpthosts.cdb is not read.
 * Security: the last line against open relaying (security.md §1.7). By default a local part that
 * carries its own route (`%`, `!`, `@`: `u%remote@local`) is refused from non-relay clients, since
 * a downstream MTA applying the percent hack would relay it; `allow_routing 1` restores qpsmtpd.
 */

import type { HookContext } from '../../host/context.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { RcptHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { accept, reject } from '../../host/verdict.ts'
import { parseIp } from '../../net/ip.ts'
import { normalizeDomain } from '../../protocol/address.ts'
import type { Address } from '../../protocol/envelope.ts'

const relayingDenied = { code: 550, enhanced: '5.7.1', text: 'Relaying denied' } as const

/** Sender-specified routing inside a local part (RFC 5321 §3.6.1, Postfix allow_untrusted_routing). */
const ROUTING = /[%!@]/

/** The address literal `[1.2.3.4]` / `[IPv6:…]` as a comparable key, or undefined. */
function literalKey(domain: string): string | undefined {
  if (!domain.startsWith('[') || !domain.endsWith(']')) return undefined
  const inner = domain.slice(1, -1)
  if (/^ipv6:/i.test(inner)) return ipKey(inner.slice(5), 6)
  return ipKey(inner, 4)
}

/** An IP as `4:<n>` or `6:<n>`; IPv4-mapped IPv6 becomes IPv4 so `::ffff:127.0.0.1` equals `127.0.0.1`. */
function ipKey(ip: string, only?: 4 | 6): string | undefined {
  // IPv6 text has a colon, IPv4 text none: a literal of one kind written as the other is refused.
  if ((only === 4 && ip.includes(':')) || (only === 6 && !ip.includes(':'))) return undefined
  const a = parseIp(ip)
  return a === undefined ? undefined : `${a.family}:${a.value}`
}

export default definePlugin({
  name: 'rcpt/ok',
  aliases: ['rcpt_ok'],
  description: 'accept recipients in me/rcpthosts/morercpthosts and from relay clients; deny relaying',
  options: {
    allow_routing: opt.boolean({
      default: false,
      description: 'accept local parts with %, ! or @ (user%remote@local) from non-relay clients, as qpsmtpd does',
    }),
  },
  setup({ options, config, server }) {
    const me = normalizeDomain(server.me)
    const configMe = config.lines('me')[0]?.trim().split(/\s/)[0] ?? ''
    const rcpthosts = config.live('rcpthosts', (lines) => {
      const exact = new Set<string>([me])
      if (configMe !== '') exact.add(normalizeDomain(configMe))
      const suffixes: string[] = []
      for (const { text } of lines) {
        const entry = text.trim().split(/\s/)[0] ?? ''
        if (entry === '') continue
        // `.example.com` covers subdomains only, not example.com itself (qpsmtpd, qmail rcpthosts).
        if (entry.startsWith('.') && entry.length > 1) suffixes.push(`.${normalizeDomain(entry.slice(1))}`)
        else exact.add(normalizeDomain(entry))
      }
      return { exact, suffixes }
    })
    const morercpthosts = config.live(
      'morercpthosts',
      (lines) =>
        new Set(
          lines
            .map((l) => l.text.trim())
            .filter((e) => e !== '')
            .map((e) => normalizeDomain(e)),
        ),
    )

    const isLocalDomain = (ctx: HookContext, domain: string): boolean => {
      const literal = literalKey(domain)
      if (literal !== undefined) return literal === ipKey(ctx.connection.local.ip)
      if (domain.startsWith('[')) return false
      const d = normalizeDomain(domain)
      const { exact, suffixes } = rcpthosts.current()
      if (exact.has(d) || morercpthosts.current().has(d)) return true
      return suffixes.some((s) => d.endsWith(s))
    }

    const isLocal = (ctx: HookContext, a: Address): 'local' | 'routing' | 'foreign' => {
      // RFC 5321 §4.5.1: <postmaster> without a domain must be accepted.
      if (a.domain === undefined) return 'local'
      if (!isLocalDomain(ctx, a.domain)) return 'foreign'
      return !options.allow_routing && ROUTING.test(a.local) ? 'routing' : 'local'
    }

    const rcpt: RcptHook = (ctx, to) => {
      const where = isLocal(ctx, to.address)
      if (where === 'local') {
        ctx.result('pass', 'local domain')
        return accept()
      }
      if (ctx.connection.relayClient) {
        ctx.result('pass', 'relay client')
        return accept()
      }
      ctx.result('fail', where === 'routing' ? 'sender-specified routing' : 'relaying denied')
      return reject(relayingDenied)
    }

    return { hooks: { rcpt } }
  },
})
