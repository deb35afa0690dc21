/**
 * rcpt/vip: accept mail for a list of local parts, in any domain we receive mail for; with
 * `refuse_others 1`, refuse every other recipient with 550 5.1.1.
 *
 * In config/plugins (qpsmtpd syntax; the package name loads it):
 *   qtsmtpd-plugin-vip alice,bob refuse_others 1
 */
import { accept, definePlugin, opt, pass, type RcptHook, reject } from 'qtsmtpd'

export default definePlugin({
  name: 'rcpt/vip',
  description: 'accept mail for a list of local parts',
  options: {
    users: opt.list({ positional: 0, description: 'local parts we accept' }),
    refuse_others: opt.boolean({ default: false, description: 'refuse every other recipient' }),
  },
  timeoutMs: 2_000,
  setup({ options, log }) {
    const users = new Set(options.users.map((u) => u.toLowerCase()))
    log.info(`accepting mail for ${[...users].join(', ')}`)
    const rcpt: RcptHook = (ctx, to) => {
      if (users.has(to.address.local.toLowerCase())) {
        ctx.result('pass', `VIP ${to.address.local}`)
        return accept()
      }
      return options.refuse_others ? reject({ code: 550, enhanced: '5.1.1', text: 'No such VIP here' }) : pass()
    }
    return { hooks: { rcpt } }
  },
})
