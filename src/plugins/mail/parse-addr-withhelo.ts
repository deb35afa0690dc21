/**
 * mail/parse-addr-withhelo (qpsmtpd `parse_addr_withhelo`): a client that greeted with HELO
 * speaks RFC 821, where MAIL FROM and RCPT TO take no parameters (RFC 5321 §4.1.1.2 reserves
 * them for ESMTP, RFC 1869 §4.2). After HELO, any parameter is refused with 501 5.5.4 on the
 * mail_parse and rcpt_parse hooks; after EHLO nothing changes.
 */
import type { HookContext } from '../../host/context.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { HookMap, RawPath, RewriteVerdict } from '../../host/hook-map.ts'
import { pass, reject } from '../../host/verdict.ts'

function check(ctx: HookContext, raw: RawPath, verb: 'MAIL' | 'RCPT'): RewriteVerdict {
  if (ctx.connection.helo?.verb !== 'HELO' || raw.params.trim() === '') return pass()
  ctx.result('fail', `parameters after HELO in ${verb}`)
  return reject({ code: 501, enhanced: '5.5.4', text: `No parameters allowed in ${verb}` })
}

export default definePlugin({
  name: 'mail/parse-addr-withhelo',
  aliases: ['parse_addr_withhelo'],
  description: 'refuse MAIL/RCPT parameters from clients that said HELO (RFC 821)',
  options: {},
  setup() {
    const mailParse: HookMap['mailParse'] = (ctx, raw) => check(ctx, raw, 'MAIL')
    const rcptParse: HookMap['rcptParse'] = (ctx, raw) => check(ctx, raw, 'RCPT')
    return { hooks: { mailParse, rcptParse } }
  },
})
