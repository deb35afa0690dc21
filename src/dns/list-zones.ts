/**
 * The zone files of the DNS list plugins, in qpsmtpd's formats: `dnsbl_zones` lines are
 * `zone[:message]`, `rhsbl_zones` and `whitelist_zones` lines `zone [message]`. qtsmtpd adds an
 * answer filter in Postfix's syntax after the zone (`zen.spamhaus.org=127.0.0.[2..11]`), so that
 * only the codes an operator wants are listings. A malformed line is a ConfigError at its
 * file:line: a zone name that is not a domain, a filter that does not parse, a zone listed twice.
 */

import type { ConfigLine } from '../config/config-dir.ts'
import { ConfigError, ConfigErrorCode, combineConfigErrors } from '../config/config-error.ts'
import { type CodeFilter, isDomainName, parseCodeFilter } from './dnsbl.ts'

export interface ListZone {
  /** Lower case, without a trailing dot. */
  readonly zone: string
  readonly filter: CodeFilter | undefined
  /** The filter as written, for log lines. */
  readonly filterText: string | undefined
  /** The operator's reply text (`%IP%` is the client's address), if the line has one. */
  readonly message: string | undefined
  readonly at: ConfigLine
}

/** `dnsbl_zones`: the message follows the first `:`. */
export const parseDnsblZones = (lines: readonly ConfigLine[]): ListZone[] => parseZones(lines, /:/)

/** `rhsbl_zones`, `whitelist_zones`: the message follows the first blank. */
export const parseRhsblZones = (lines: readonly ConfigLine[]): ListZone[] => parseZones(lines, /\s+/)

function parseZones(lines: readonly ConfigLine[], separator: RegExp): ListZone[] {
  const zones: ListZone[] = []
  const seen = new Map<string, ConfigLine>()
  const problems: ConfigError[] = []
  const problem = (at: ConfigLine, text: string) =>
    problems.push(new ConfigError(ConfigErrorCode.Syntax, at.file, at.line, text))
  for (const at of lines) {
    const text = at.text.trim()
    const cut = separator.exec(text)
    const head = cut === null ? text : text.slice(0, cut.index)
    const message = cut === null ? undefined : text.slice(cut.index + cut[0].length).trim()
    const eq = head.indexOf('=')
    const name = (eq < 0 ? head : head.slice(0, eq)).toLowerCase().replace(/\.$/, '')
    const filterText = eq < 0 ? undefined : head.slice(eq + 1)
    if (!isDomainName(name)) {
      problem(at, `not a DNS zone name: ${JSON.stringify(name)}`)
      continue
    }
    const filter = filterText === undefined ? undefined : parseCodeFilter(filterText)
    if (filterText !== undefined && filter === undefined) {
      problem(
        at,
        `answer filter ${JSON.stringify(filterText)} of ${name} is not four octets, each a number or a list such as [2..11] or [2;4;10..11]`,
      )
      continue
    }
    const earlier = seen.get(name)
    if (earlier !== undefined) {
      problem(at, `zone ${name} is listed twice (also at ${earlier.file}:${earlier.line})`)
      continue
    }
    seen.set(name, at)
    zones.push({ zone: name, filter, filterText, message: message === '' ? undefined : message, at })
  }
  if (problems.length > 0) throw combineConfigErrors(problems)
  return zones
}
