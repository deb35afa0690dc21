/**
 * helo/dont-require-anglebrackets (qpsmtpd `dont_require_anglebrackets`): accepts
 * `MAIL FROM:a@b` and `RCPT TO:a@b` by wrapping the bare path in `<>` on the mail_pre and
 * rcpt_pre hooks, and costs the client 2 karma points. The core already takes unbracketed
 * paths unless `strict_envelopes` is on, so this matters in strict mode (RFC 5321 §4.1.2
 * requires the brackets; old clients omit them).
 */

import type { HookContext } from '../../host/context.ts'
import { adjustKarma } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { type HookMap, type RawPath, type RewriteVerdict, rewrite } from '../../host/hook-map.ts'
import { pass } from '../../host/verdict.ts'

function wrap(ctx: HookContext, raw: RawPath, verb: string): RewriteVerdict {
  if (raw.path.startsWith('<') && raw.path.endsWith('>') && raw.path.length >= 2) return pass()
  adjustKarma(ctx, -2)
  ctx.result('info', `added ${verb} angle brackets`)
  return rewrite({ path: `<${raw.path}>`, params: raw.params })
}

export default definePlugin({
  name: 'helo/dont-require-anglebrackets',
  aliases: ['dont_require_anglebrackets'],
  description: 'accept MAIL FROM/RCPT TO paths without <> (karma -2)',
  options: {},
  setup() {
    const mailPre: HookMap['mailPre'] = (ctx, raw) => wrap(ctx, raw, 'MAIL')
    const rcptPre: HookMap['rcptPre'] = (ctx, raw) => wrap(ctx, raw, 'RCPT')
    return { hooks: { mailPre, rcptPre } }
  },
})
