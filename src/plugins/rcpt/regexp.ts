/**
 * rcpt/regexp (qpsmtpd `rcpt_regexp`): decides recipients from the file `rcpt_regexp`, one
 * rule per line: `/perl pattern/` (case-insensitive) or an address (compared in lower case),
 * a qpsmtpd return code (OK, DENY, DENYSOFT, DENY_DISCONNECT, DENYSOFT_DISCONNECT, DECLINED),
 * and the reply text. The first matching line decides; none matching passes to the next
 * plugin. The file takes effect when edited; a bad line (no or unknown code, a pattern that
 * needs backtracking) stops the start at file:line, or is logged and ignored with the previous
 * file kept when edited in.
 * Security: patterns run in linear time (qpsmtpd compiled them with eval on every RCPT).
 */
import type { ConfigLine } from '../../config/config-dir.ts'
import { ConfigError, combineConfigErrors } from '../../config/config-error.ts'
import { type PerlPattern, perlPatternAt } from '../../config/perl-pattern.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { RcptHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { parseReturnCode, type VerdictFromText } from '../../host/return-code.ts'
import { pass } from '../../host/verdict.ts'

interface Rule {
  readonly matches: (rcpt: string) => boolean
  readonly verdict: VerdictFromText
  readonly text: string | undefined
  readonly at: ConfigLine
}

function parseRules(lines: readonly ConfigLine[]): readonly Rule[] {
  const rules: Rule[] = []
  const problems: ConfigError[] = []
  for (const at of lines) {
    const [re = '', code, ...comment] = at.text.split(/\s+/)
    const bad = (why: string) => problems.push(new ConfigError('SMTPD_ERR_CONFIG_SYNTAX', at.file, at.line, why))
    if (code === undefined) {
      bad(`no return code after ${re}`)
      continue
    }
    const verdict = parseReturnCode(code)
    if (typeof verdict === 'string') {
      bad(verdict)
      continue
    }
    let matches: (rcpt: string) => boolean
    const slashed = /^\/(.*)\/$/.exec(re)
    if (slashed) {
      let pattern: PerlPattern
      try {
        pattern = perlPatternAt(at, slashed[1] ?? '', { caseInsensitive: true })
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e
        problems.push(e)
        continue
      }
      matches = (rcpt) => pattern.test(rcpt)
    } else {
      const address = re.toLowerCase()
      matches = (rcpt) => rcpt === address
    }
    rules.push({ matches, verdict, text: comment.length > 0 ? comment.join(' ') : undefined, at })
  }
  if (problems.length > 0) throw combineConfigErrors(problems)
  return rules
}

export default definePlugin({
  name: 'rcpt/regexp',
  aliases: ['rcpt_regexp'],
  description: 'decide recipients by patterns and addresses in rcpt_regexp, with return codes',
  options: { loglevel: opt.loglevel() },
  timeoutMs: 5_000,
  setup({ config }) {
    const rules = config.live('rcpt_regexp', parseRules)

    const rcpt: RcptHook = (ctx, to) => {
      const { local, domain } = to.address
      if (domain === undefined || local === '') return pass()
      const address = `${local}@${domain}`.toLowerCase()
      for (const rule of rules.current()) {
        if (!rule.matches(address)) continue
        ctx.log.debug(`${address} matches ${rule.at.file}:${rule.at.line}`)
        const verdict = rule.verdict(rule.text)
        ctx.result(
          verdict.kind === 'pass' ? 'skip' : verdict.kind === 'accept' ? 'pass' : 'fail',
          `line ${rule.at.line}`,
        )
        return verdict
      }
      return pass()
    }

    return { hooks: { rcpt } }
  },
})
