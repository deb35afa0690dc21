/**
 * connect/dns_whitelist_soft (qpsmtpd `dns_whitelist_soft`, `async/dns_whitelist_soft`): the
 * client's address against the DNS allowlists of `whitelist_zones` (dnswl.org, ...), every zone
 * at once at connect. A listed client is a whitelisted host (the `WhitelistHost` key, qpsmtpd's
 * `whitelisthost` note): the plugins after this one that honour immunity (dnsbl, rhsbl, helo,
 * resolvable_fromhost, ...) skip it. An A record in 127.0.0.0/8 is a listing; anything else,
 * the 127.255.255.0/24 error codes and dnswl.org's 127.0.0.255 ("over the query limit") are not.
 * A lookup that fails whitelists nobody, the safe direction; it is logged.
 */

import { queryList } from '../../dns/dnsbl.ts'
import { parseRhsblZones } from '../../dns/list-zones.ts'
import { WhitelistHost } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { ConnectHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import { reversedLabels } from '../../net/ip.ts'

/** dnswl.org answers 127.0.0.255 to resolvers over its free query limit. */
const DNSWL_BLOCKED = 0x7f0000ff

export default definePlugin({
  name: 'connect/dns_whitelist_soft',
  aliases: ['dns_whitelist_soft', 'async/dns_whitelist_soft'],
  description: 'mark clients listed in the DNS allowlists of whitelist_zones as whitelisted hosts',
  options: {
    timeout: opt.number({ default: 4, min: 0.1, description: 'seconds for each lookup (at most dns_timeout)' }),
    loglevel: opt.loglevel(),
  },
  requires: ['dns'],
  timeoutMs: 30_000,
  // Only ever grants: a plugin that fails leaves the client not whitelisted.
  onFailure: 'pass',
  setup({ options, config, dns }) {
    const zones = config.live('whitelist_zones', parseRhsblZones)
    const connect: ConnectHook = async (ctx) => {
      const ip = ctx.connection.remote.ip
      const key = reversedLabels(ip)
      const list = zones.current()
      if (key === undefined || list.length === 0) {
        ctx.result('skip', 'no zones')
        return pass()
      }
      const answers = await Promise.all(
        list.map((z) =>
          queryList(dns, `${key}.${z.zone}`, {
            filter: z.filter,
            errorCodes: (code) => code === DNSWL_BLOCKED,
            signal: ctx.signal,
            timeoutMs: options.timeout * 1000,
          }),
        ),
      )
      for (const [i, a] of answers.entries()) {
        const zone = list[i]?.zone
        if (a.kind === 'error') ctx.log.warn(`${zone}: no usable answer for ${ip}: ${a.detail}`)
        if (a.kind !== 'listed') continue
        ctx.connection.notes.set(WhitelistHost, true)
        ctx.log.notice(`host ${ip} is whitelisted by ${zone} (${a.codes.join(', ')})`)
        ctx.result('pass', `whitelisted by ${zone}`)
        return pass()
      }
      ctx.result('skip', 'not listed')
      return pass()
    }
    return { hooks: { connect } }
  },
})
