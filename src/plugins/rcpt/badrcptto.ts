/**
 * rcpt/badrcptto (qpsmtpd `badrcptto`, older `check_badrcptto` and `check_badrcptto_patterns`):
 * refuses recipients listed in `badrcptto`: a full address, `@domain`, or a Perl pattern
 * (matched case-insensitively against `user@domain` in lower case), each optionally followed by
 * the reply text. Without one the reply is qpsmtpd's "mail to ADDRESS not accepted here" with
 * 5.1.1 (no such user). The file takes effect when edited. Relay clients and whitelisted
 * senders are not checked (qpsmtpd is_immune). Refused at once, as in qpsmtpd (no `reject`
 * option there either).
 * Security: patterns are matched in linear time; the reply names the recipient, never the pattern.
 */
import { type AddressList, parseAddressList } from '../../config/address-list.ts'
import { adjustKarma, isImmune } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { RcptHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { pass, reject } from '../../host/verdict.ts'

export default definePlugin({
  name: 'rcpt/badrcptto',
  aliases: ['badrcptto', 'check_badrcptto', 'check_badrcptto_patterns'],
  description: 'refuse recipients listed in badrcptto (addresses, @domain, patterns)',
  options: { loglevel: opt.loglevel() },
  timeoutMs: 5_000,
  setup({ config }) {
    const list = config.live(
      'badrcptto',
      (lines): AddressList => parseAddressList(lines, { caseInsensitivePatterns: true }),
    )

    const rcpt: RcptHook = (ctx, to) => {
      if (isImmune(ctx)) {
        ctx.result('skip', 'immune')
        return pass()
      }
      const { local, domain } = to.address
      if (domain === undefined || local === '') {
        ctx.result('skip', 'no domain')
        return pass()
      }
      const address = `${local.toLowerCase()}@${domain.toLowerCase()}`
      const rule = list.current().match(local.toLowerCase(), domain.toLowerCase())
      if (rule === undefined) {
        ctx.result('pass')
        return pass()
      }
      ctx.log.info(`recipient matches ${rule.entry} (${rule.at.file}:${rule.at.line})`)
      ctx.result('fail', `${address} in badrcptto`)
      adjustKarma(ctx, -2)
      if (rule.reason !== undefined) return reject({ code: 550, enhanced: '5.7.1', text: rule.reason })
      return reject({ code: 550, enhanced: '5.1.1', text: `mail to ${address} not accepted here` })
    }

    return { hooks: { rcpt } }
  },
})
