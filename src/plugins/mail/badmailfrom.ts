/**
 * mail/badmailfrom (qpsmtpd `badmailfrom`, older `check_badmailfrom` and
 * `check_badmailfrom_patterns`): refuses senders listed in `badmailfrom`, qmail-smtpd's file:
 * a full address, `@domain` for every address there, or a Perl pattern matched against
 * `user@domain` in lower case, each optionally followed by the reply text. The file takes
 * effect when edited. The null sender, a sender without a domain, relay clients and
 * whitelisted senders are not checked (qpsmtpd is_immune). `reject 0|1|naughty` and
 * `reject_type` as in qpsmtpd (default: refuse at once, 550).
 * Security: patterns are matched in linear time, so a crafted address cannot stall the server.
 */
import { type AddressList, parseAddressList } from '../../config/address-list.ts'
import { adjustKarma, isImmune, rejectAs, rejectOptions } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { MailHook } from '../../host/hook-map.ts'
import { pass } from '../../host/verdict.ts'

const DEFAULT_REASON = 'Your envelope sender is in my badmailfrom list'

export default definePlugin({
  name: 'mail/badmailfrom',
  aliases: ['badmailfrom', 'check_badmailfrom', 'check_badmailfrom_patterns'],
  description: 'refuse senders listed in badmailfrom (addresses, @domain, patterns)',
  options: { ...rejectOptions },
  timeoutMs: 5_000,
  setup({ options, config }) {
    const list = config.live('badmailfrom', (lines): AddressList => parseAddressList(lines))

    const mail: MailHook = (ctx, from) => {
      if (isImmune(ctx)) {
        ctx.result('skip', 'immune')
        return pass()
      }
      const sender = from.address
      if (sender === null || sender.domain === undefined || sender.local === '') {
        ctx.result('skip', 'null sender or no domain')
        return pass()
      }
      const rule = list.current().match(sender.local.toLowerCase(), sender.domain.toLowerCase())
      if (rule === undefined) {
        ctx.result('pass')
        return pass()
      }
      ctx.log.info(`sender matches ${rule.entry} (${rule.at.file}:${rule.at.line})`)
      adjustKarma(ctx, -1)
      return rejectAs(ctx, options, rule.reason ?? DEFAULT_REASON)
    }

    return { hooks: { mail } }
  },
})
