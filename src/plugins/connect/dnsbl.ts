/**
 * connect/dnsbl (qpsmtpd `dnsbl`, `async/dnsbl`): the client's address against the DNS lists of
 * `dnsbl_zones` (`zone[=filter][:message]`), all zones at once at connect, IPv4 and IPv6 clients
 * (RFC 5782 §2.1, §2.4). A listing refuses the connection (554 5.7.1, reject_type perm), or with
 * `reject naughty` is left to the naughty plugin, which then spares postmaster, abuse,
 * mailer-daemon and root (RFC 5321 §4.5.1). A list that cannot answer (timeout, SERVFAIL, error
 * code) lists nobody: logged, and with `on_error defer` the client gets 421 instead. `dnsbl_allow`
 * and relay/whitelisted clients are not checked; RBLSMTPD works as under rblsmtpd (tcpserver).
 */

import { parseCidrList } from '../../config/cidr-list.ts'
import { queryList, replyText } from '../../dns/dnsbl.ts'
import { type ListZone, parseDnsblZones } from '../../dns/list-zones.ts'
import { adjustKarma, isImmune, NaughtySpared, rejectAs, rejectOptions, sparedKey } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { ConnectHook, RcptHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { defer, pass } from '../../host/verdict.ts'
import { reversedLabels } from '../../net/ip.ts'
import type { EnhancedCode } from '../../protocol/reply.ts'

/** The connect hook's own codes, so that reject_type temp stays a 421 (RFC 5321 §3.1). */
const CONNECT_CODES: { perm: [number, EnhancedCode]; temp: [number, EnhancedCode] } = {
  perm: [554, '5.7.1'],
  temp: [421, '4.7.1'],
}

/** Recipients a listed client may still write to (qpsmtpd's list). */
const SPECIAL_LOCAL_PARTS = /^(?:postmaster|abuse|mailer-daemon|root)$/i

/** qpsmtpd's old form `dnsbl disconnect`: an odd argument list starts with the reject_type. */
export function translateListArgs(args: readonly string[]): readonly string[] {
  return args.length % 2 === 1 ? ['reject_type', ...args] : args
}

export default definePlugin({
  name: 'connect/dnsbl',
  aliases: ['dnsbl', 'async/dnsbl'],
  description: 'refuse clients listed in the DNS lists of dnsbl_zones (IPv4 and IPv6, all zones at once)',
  options: {
    ...rejectOptions,
    timeout: opt.number({ default: 30, min: 0.1, description: 'seconds for each lookup (at most dns_timeout)' }),
    on_error: opt.enum(['pass', 'defer'], {
      default: 'pass',
      description: 'a list that cannot answer: pass (it lists nobody) or defer (421)',
    }),
  },
  translateArgs: translateListArgs,
  requires: ['dns'],
  timeoutMs: 60_000,
  setup({ options, config, dns, log }) {
    const zones = config.live('dnsbl_zones', parseDnsblZones)
    const allow = config.live('dnsbl_allow', (lines) => parseCidrList(lines))
    const rejectMessage = config.lines('dnsbl_rejectmsg').join(' ')
    const rblsmtpd = process.env.RBLSMTPD
    if (rblsmtpd === '') log.info('RBLSMTPD is set and empty: clients are not checked')
    else if (rblsmtpd !== undefined) log.warn(`RBLSMTPD is set: every client is refused with "${rblsmtpd}"`)
    const timeoutMs = options.timeout * 1000

    const messageFor = (zone: ListZone, ip: string, text: string | undefined): string =>
      replyText(zone.message?.replaceAll('%IP%', ip) ?? text ?? `Blocked by ${zone.zone}`)

    const connect: ConnectHook = async (ctx) => {
      const ip = ctx.connection.remote.ip
      if (isImmune(ctx)) {
        ctx.result('skip', 'immune')
        return pass()
      }
      if (rblsmtpd !== undefined) {
        if (rblsmtpd === '') {
          ctx.result('skip', 'RBLSMTPD set, empty')
          return pass()
        }
        const text = replyText([rejectMessage, rblsmtpd.replace(/^-/, '').replaceAll('%IP%', ip)].join(' '))
        return rejectAs(ctx, options, text, CONNECT_CODES)
      }
      if (allow.current().contains(ip)) {
        ctx.result('skip', 'in dnsbl_allow')
        return pass()
      }
      const key = reversedLabels(ip)
      const list = zones.current()
      if (key === undefined || list.length === 0) {
        ctx.result('skip', list.length === 0 ? 'no zones' : 'no address')
        return pass()
      }
      const answers = await Promise.all(
        list.map((z) =>
          queryList(dns, `${key}.${z.zone}`, {
            filter: z.filter,
            text: z.message === undefined,
            signal: ctx.signal,
            timeoutMs,
          }),
        ),
      )
      const errors: string[] = []
      let first: { zone: ListZone; text: string | undefined; codes: readonly string[] } | undefined
      answers.forEach((a, i) => {
        const zone = list[i] as ListZone
        if (a.kind === 'error') {
          errors.push(zone.zone)
          ctx.log.warn(`${zone.zone}: no usable answer for ${ip}: ${a.detail}`)
        } else if (a.kind === 'listed') {
          adjustKarma(ctx, -1)
          ctx.log.info(`${ip} listed in ${zone.zone} (${a.codes.join(', ')})`)
          first ??= { zone, text: a.text, codes: a.codes }
        } else if (a.ignored.length > 0) {
          ctx.log.debug(`${zone.zone} answered ${a.ignored.join(', ')}, outside its filter ${zone.filterText}`)
        }
      })
      if (first !== undefined) return rejectAs(ctx, options, messageFor(first.zone, ip, first.text), CONNECT_CODES)
      if (errors.length > 0) {
        ctx.result('error', `no answer from ${errors.join(', ')}`)
        if (options.on_error === 'defer' && options.reject !== '0')
          return defer(
            { code: 421, enhanced: '4.4.3', text: 'DNS lists cannot be checked now, try again later' },
            { disconnect: true },
          )
        return pass()
      }
      ctx.result('pass')
      return pass()
    }

    const rcpt: RcptHook = (ctx, to) => {
      if (SPECIAL_LOCAL_PARTS.test(to.address.local)) {
        ctx.transaction.notes.get(NaughtySpared).add(sparedKey(to.address))
        ctx.log.debug(`${sparedKey(to.address)} may be written to by listed clients`)
      }
      return pass()
    }

    return { hooks: { connect, rcpt } }
  },
})
