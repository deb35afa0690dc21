/**
 * mail/rhsbl (qpsmtpd `rhsbl`, `async/rhsbl`): domain names against the DNS lists of
 * `rhsbl_zones` (`zone[=filter] [message]`, RFC 5782 §2.3) at MAIL: the sender's domain, and with
 * `check` also the HELO name and the client's verified host name (fcrdns), every name under
 * every zone at once. A listing refuses the sender (550 5.7.1; reject_type, reject 0|naughty as
 * qpsmtpd). A list that cannot answer lists nobody (logged), or with `on_error defer` gets 451.
 * The null sender's domain is not checked; relay clients and whitelisted hosts not at all.
 */

import { isDomainName, queryList, replyText } from '../../dns/dnsbl.ts'
import { parseRhsblZones } from '../../dns/list-zones.ts'
import { isImmune, rejectAs, rejectOptions } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { MailHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { defer, pass } from '../../host/verdict.ts'
import { translateListArgs } from '../connect/dnsbl.ts'

const CHECKS = ['sender', 'helo', 'rdns'] as const
type Check = (typeof CHECKS)[number]

const describeName: Record<Check, (name: string) => string> = {
  sender: (name) => `Mail from ${name}`,
  helo: (name) => `Mail from HELO ${name}`,
  rdns: (name) => `Mail from host ${name}`,
}

export default definePlugin({
  name: 'mail/rhsbl',
  aliases: ['rhsbl', 'async/rhsbl'],
  description: 'refuse senders whose domain (or HELO name, or host name) is in the DNS lists of rhsbl_zones',
  options: {
    ...rejectOptions,
    check: opt.list({
      default: ['sender'],
      description: 'the names looked up: sender (the MAIL FROM domain), helo, rdns (the verified host name)',
    }),
    timeout: opt.number({ default: 30, min: 0.1, description: 'seconds for each lookup (at most dns_timeout)' }),
    on_error: opt.enum(['pass', 'defer'], {
      default: 'pass',
      description: 'a list that cannot answer: pass (it lists nobody) or defer (451)',
    }),
  },
  translateArgs: translateListArgs,
  requires: ['dns'],
  timeoutMs: 60_000,
  setup({ options, config, dns }) {
    const unknown = options.check.filter((c) => !(CHECKS as readonly string[]).includes(c))
    if (unknown.length > 0) throw new Error(`check: ${unknown.join(', ')} is not one of ${CHECKS.join(', ')}`)
    const checks = new Set(options.check as readonly Check[])
    const zones = config.live('rhsbl_zones', parseRhsblZones)
    const timeoutMs = options.timeout * 1000

    const mail: MailHook = async (ctx, from) => {
      if (isImmune(ctx)) {
        ctx.result('skip', 'immune')
        return pass()
      }
      const candidates: [Check, string | undefined][] = [
        ['sender', from.address?.domain],
        ['helo', ctx.connection.helo?.host],
        ['rdns', ctx.connection.remoteHost],
      ]
      const names: { check: Check; name: string }[] = []
      for (const [check, raw] of candidates) {
        const name = raw?.toLowerCase().replace(/\.$/, '')
        if (checks.has(check) && name !== undefined && isDomainName(name) && name.includes('.'))
          if (!names.some((n) => n.name === name)) names.push({ check, name })
      }
      const list = zones.current()
      if (names.length === 0 || list.length === 0) {
        ctx.result('skip', list.length === 0 ? 'no zones' : 'no name to check')
        return pass()
      }
      const lookups = names.flatMap((n) => list.map((zone) => ({ ...n, zone })))
      const answers = await Promise.all(
        lookups.map((l) =>
          queryList(dns, `${l.name}.${l.zone.zone}`, {
            filter: l.zone.filter,
            text: l.zone.message === undefined,
            signal: ctx.signal,
            timeoutMs,
          }),
        ),
      )
      const errors: string[] = []
      for (const [i, a] of answers.entries()) {
        const l = lookups[i]
        if (l === undefined) continue
        if (a.kind === 'error') {
          errors.push(`${l.name}.${l.zone.zone}`)
          ctx.log.warn(`${l.zone.zone}: no usable answer for ${l.name}: ${a.detail}`)
        } else if (a.kind === 'listed') {
          const why = l.zone.message ?? a.text ?? `is listed in ${l.zone.zone}`
          return rejectAs(ctx, options, replyText(`${describeName[l.check](l.name)} rejected because it ${why}`))
        }
      }
      if (errors.length > 0) {
        ctx.result('error', `no answer for ${errors.join(', ')}`)
        if (options.on_error === 'defer' && options.reject !== '0')
          return defer({ code: 451, enhanced: '4.4.3', text: 'DNS lists cannot be checked now, try again later' })
        return pass()
      }
      ctx.result('pass')
      return pass()
    }

    return { hooks: { mail } }
  },
})
