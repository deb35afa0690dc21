/** Address lists in configuration files (relayclients, dnsbl_allow, proxy_trusted, …): net/cidr.ts's syntax. */
import { CidrList, parseCidr } from '../net/cidr.ts'
import type { ConfigLine } from './config-dir.ts'
import { ConfigError, ConfigErrorCode } from './config-error.ts'

/**
 * The list these lines give; a bad entry is a ConfigError at its file:line.
 *
 * @example
 *   const relay = config.live('relayclients', parseCidrList)
 *   // in a hook: relay.current().contains(ctx.connection.remote.ip)
 */
export function parseCidrList(lines: readonly ConfigLine[]): CidrList {
  const entries = lines.map((l) => {
    const c = parseCidr(l.text)
    if (c === undefined)
      throw new ConfigError(
        ConfigErrorCode.Syntax,
        l.file,
        l.line,
        `not an IP address, CIDR or prefix: ${JSON.stringify(l.text)}`,
      )
    return c
  })
  return CidrList.of(entries)
}
