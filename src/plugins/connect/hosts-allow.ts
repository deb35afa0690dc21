/**
 * connect/hosts-allow (qpsmtpd `hosts_allow`): on pre-connection, refuses a client with more
 * than `max_conn_ip` open connections from its address (421 4.7.0), then applies the first
 * matching line of `config/hosts_allow`: `ip[/mask] RETURNCODE message` (RETURNCODE is a qpsmtpd
 * name: OK, DENY, DENYSOFT, DENY_DISCONNECT, DENYSOFT_DISCONNECT, DECLINED, DONE). IPv4 and IPv6
 * (qpsmtpd: IPv4 only), via net/cidr.ts. A bad line is a configuration error at start-up
 * (qpsmtpd skipped it). The count is the server's (per process with --workers).
 */

import { parseCidrList } from '../../config/cidr-list.ts'
import type { ConfigLine } from '../../config/config-dir.ts'
import { ConfigError, ConfigErrorCode } from '../../config/config-error.ts'
import { ConnectionsFromIp } from '../../host/connection-keys.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { HookMap } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { accept, defer, pass, reject, type Verdict } from '../../host/verdict.ts'
import type { Cidr, CidrList } from '../../net/cidr.ts'

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

export default definePlugin({
  name: 'connect/hosts-allow',
  aliases: ['hosts_allow'],
  description: 'per-address connection limit and the hosts_allow rules file',
  options: {
    max_conn_ip: opt.number({
      default: 0,
      min: 0,
      integer: true,
      description: 'open connections allowed from one address (0: no limit)',
    }),
  },
  setup({ options, config }) {
    const rules = parseHostsAllow(config.located('hosts_allow'))
    const preConnection: HookMap['preConnection'] = (ctx) => {
      const ip = ctx.connection.remote.ip
      const max = options.max_conn_ip
      const open = ctx.get(ConnectionsFromIp)
      if (max > 0 && open > max) {
        ctx.result('fail', `too many connections from ${ip} (${open} > ${max})`)
        return defer(
          { code: 421, enhanced: '4.7.0', text: `Sorry, too many connections from ${ip}, try again later` },
          { disconnect: true },
        )
      }
      for (const rule of rules) {
        if (!rule.net.contains(ip)) continue
        ctx.result(rule.code.startsWith('DENY') ? 'fail' : 'pass', `${rule.code} ${rule.message ?? ''}`.trim())
        return verdictFor(rule)
      }
      return pass()
    }
    return { hooks: { preConnection } }
  },
})
