/**
 * connect/relay (qpsmtpd `relay`): decides at connect whether the client may relay. In qpsmtpd's order:
 * a match in `norelayclients` wins and clears relaying; otherwise a non-empty env `RELAYCLIENT`
 * (as tcpserver sets it) makes every client a relay client; otherwise `relayclients`,
 * `morerelayclients` (plain text here; qpsmtpd reads a cdb) and the IPv6 loopback `::1` do.
 * Lists take addresses, CIDRs and qpsmtpd prefixes (`192.168.`, `2001:db8:`), see net/cidr.ts.
 * `only 1` refuses RCPT from non-relay clients (550 5.7.1) and accepts it from relay clients.
 * The three files take effect when edited (checked at most once a second), as in qpsmtpd.
 * Security: RELAYCLIENT is process-wide here, so setting it opens relaying to every client.
 */

import { parseCidrList } from '../../config/cidr-list.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { ConnectHook, Hooks, RcptHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { accept, pass, reject } from '../../host/verdict.ts'

/** qpsmtpd's is_octet_match treats the IPv6 loopback as a relay client. */
const LOOPBACK_V6 = parseCidrList([{ text: '::1', file: '<relay>', line: 0 }])

/** Perl truthiness of an environment value: unset, empty and "0" are false. */
const envTrue = (v: string | undefined): boolean => v !== undefined && v !== '' && v !== '0'

export default definePlugin({
  name: 'connect/relay',
  // check_relay: the name before qpsmtpd 0.94 merged it into relay (Debian's plugins file uses it).
  aliases: ['relay', 'check_relay'],
  description: 'set relay permission from RELAYCLIENT, relayclients, morerelayclients and norelayclients',
  options: {
    only: opt.boolean({ default: false, description: 'refuse RCPT from clients that may not relay' }),
  },
  setup({ options, config, log }) {
    const norelay = config.live('norelayclients', parseCidrList)
    const relay = config.live('relayclients', parseCidrList)
    const more = config.live('morerelayclients', parseCidrList)
    const fromEnv = envTrue(process.env.RELAYCLIENT)
    if (fromEnv) log.warn('RELAYCLIENT is set: every client not in norelayclients may relay')

    const connect: ConnectHook = (ctx) => {
      const ip = ctx.connection.remote.ip
      if (norelay.current().contains(ip)) {
        ctx.connection.relayClient = false
        ctx.result('fail', 'in norelayclients')
        return pass()
      }
      if (fromEnv) {
        ctx.connection.relayClient = true
        ctx.result('pass', 'enabled by env')
        return pass()
      }
      if (relay.current().contains(ip) || more.current().contains(ip) || LOOPBACK_V6.contains(ip)) {
        ctx.connection.relayClient = true
        ctx.result('pass', 'relay client')
        return pass()
      }
      ctx.result('skip', 'no match')
      return pass()
    }

    const rcpt: RcptHook = (ctx) => {
      if (ctx.connection.relayClient) return accept()
      ctx.result('fail', 'relay only')
      return reject({ code: 550, enhanced: '5.7.1', text: 'Relaying denied' })
    }

    const hooks: Hooks = options.only ? { connect, rcpt } : { connect }
    return { hooks }
  },
})
