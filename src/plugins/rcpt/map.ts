/**
 * rcpt/map (qpsmtpd `rcpt_map`): decides the recipients of one domain from a map file of
 * `address CODE reply text` lines (codes as in rcpt_regexp). Recipients of the domain not in
 * the map get the `default` (`DENY=No_such_user.`, `_` for spaces). Other domains pass. The
 * map takes effect when edited (checked at most once a second); an empty or unreadable map
 * stops the start, and an edit that leaves it empty or broken keeps the previous map, as
 * qpsmtpd did. Addresses compare in lower case (qpsmtpd lower-cased only the recipient).
 * Each instance (`rcpt_map:2 ...`) has its own map (qpsmtpd's map was shared by all).
 */
import type { ConfigLine } from '../../config/config-dir.ts'
import { ConfigError, combineConfigErrors } from '../../config/config-error.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { RcptHook } from '../../host/hook-map.ts'
import { liveFile } from '../../host/live-config.ts'
import { opt } from '../../host/options.ts'
import { parseReturnCode, type VerdictFromText } from '../../host/return-code.ts'
import { pass } from '../../host/verdict.ts'
import { normalizeDomain } from '../../protocol/address.ts'

interface Entry {
  readonly verdict: VerdictFromText
  readonly text: string
}

const NO_SUCH_USER = 'No such user.'

function parseMap(lines: readonly ConfigLine[], file: string): ReadonlyMap<string, Entry> {
  const map = new Map<string, Entry>()
  const problems: ConfigError[] = []
  for (const at of lines) {
    const [address = '', code, ...text] = at.text.split(/\s+/)
    const bad = (why: string) => problems.push(new ConfigError('SMTPD_ERR_CONFIG_SYNTAX', at.file, at.line, why))
    if (code === undefined) {
      bad(`no return code after ${address}`)
      continue
    }
    const verdict = parseReturnCode(code)
    if (typeof verdict === 'string') bad(verdict)
    else if (!map.has(address.toLowerCase()))
      map.set(address.toLowerCase(), { verdict, text: text.length > 0 ? text.join(' ') : NO_SUCH_USER })
  }
  if (problems.length > 0) throw combineConfigErrors(problems)
  if (map.size === 0) throw new ConfigError('SMTPD_ERR_CONFIG_SYNTAX', file, undefined, 'the map is empty')
  return map
}

function parseDefault(raw: string): Entry {
  const eq = raw.indexOf('=')
  const code = eq < 0 ? raw : raw.slice(0, eq)
  const verdict = parseReturnCode(code)
  if (typeof verdict === 'string') throw new Error(verdict)
  const text = eq < 0 || raw.slice(eq + 1) === '' ? NO_SUCH_USER : raw.slice(eq + 1).replace(/_/g, ' ')
  return { verdict, text }
}

export default definePlugin({
  name: 'rcpt/map',
  aliases: ['rcpt_map'],
  description: 'decide the recipients of one domain from a map file of addresses and return codes',
  options: {
    domain: opt.string({ description: 'the domain this map decides for' }),
    file: opt.string({ description: 'the map file (relative paths from the directory holding config/)' }),
    default: opt.string({
      default: 'DENY=No_such_user.',
      description: 'CODE[=MSG] for addresses not in the map; _ is a space',
    }),
    loglevel: opt.loglevel(),
  },
  timeoutMs: 5_000,
  setup({ options, paths, log }) {
    const fallback = parseDefault(options.default)
    const domain = normalizeDomain(options.domain)
    const file = paths.resolve(options.file)
    const map = liveFile(file, (lines) => parseMap(lines, file), log)

    const rcpt: RcptHook = (ctx, to) => {
      const { local, domain: rcptDomain } = to.address
      if (rcptDomain === undefined || local === '' || normalizeDomain(rcptDomain) !== domain) return pass()
      const address = `${local}@${rcptDomain}`.toLowerCase()
      const entry = map.current().get(address) ?? fallback
      const verdict = entry.verdict(entry.text)
      ctx.result(verdict.kind === 'accept' ? 'pass' : verdict.kind === 'pass' ? 'skip' : 'fail', address)
      return verdict
    }

    return { hooks: { rcpt } }
  },
})
