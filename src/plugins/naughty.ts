/**
 * naughty (qpsmtpd `naughty`): deferred rejection. Plugins with `reject naughty` record their
 * reason in the connection's Naughty note instead of refusing at once; this plugin refuses at
 * the phase chosen with `reject connect|mail|rcpt|data|data_post` (default rcpt), and always
 * also at data_post in case an earlier plugin accepted first. The reply carries the recorded
 * reasons; `reject_type` defaults to disconnect. A successful AUTH clears the note (the core does),
 * so roaming users on listed IPs can still send. Nothing happens while the note is empty.
 * Recipients a plugin spared (dnsbl: postmaster, abuse) pass at rcpt, and a message to spared
 * recipients only passes at data and data_post.
 */
import type { HookContext } from '../host/context.ts'
import { Naughty, NaughtySpared, rejectAs, rejectOptions, rejectTypes, sparedKey } from '../host/conventions.ts'
import { definePlugin } from '../host/define-plugin.ts'
import type { Hooks, RcptHook } from '../host/hook-map.ts'
import { opt } from '../host/options.ts'
import { pass, type Verdict } from '../host/verdict.ts'
import type { EnhancedCode } from '../protocol/reply.ts'

type Phase = 'connect' | 'mail' | 'rcpt' | 'data' | 'data_post'
type Codes = { perm: [number, EnhancedCode]; temp: [number, EnhancedCode] }

/** The core's reply codes for a refusal at each hook, so the class and meaning stay right. */
const codes: Record<Phase, Codes> = {
  connect: { perm: [554, '5.7.1'], temp: [421, '4.7.0'] },
  mail: { perm: [550, '5.7.1'], temp: [450, '4.7.1'] },
  rcpt: { perm: [550, '5.7.1'], temp: [450, '4.7.1'] },
  data: { perm: [554, '5.7.1'], temp: [451, '4.7.1'] },
  data_post: { perm: [554, '5.7.1'], temp: [451, '4.7.1'] },
}

/** Reply text stays on one bounded line whatever the plugins recorded. */
const MAX_TEXT = 400

export default definePlugin({
  name: 'naughty',
  description: 'reject connections marked naughty by other plugins, at a chosen phase',
  options: {
    reject: opt.enum(['connect', 'mail', 'rcpt', 'data', 'data_post'], {
      default: 'rcpt',
      description: 'the phase at which naughty connections are refused',
    }),
    reject_type: opt.enum(rejectTypes, {
      default: 'disconnect',
      description: 'how the refusal is sent',
    }),
    loglevel: rejectOptions.loglevel,
  },
  setup({ options }) {
    const refuseAt =
      (phase: Phase) =>
      (ctx: HookContext): Verdict => {
        const reasons = ctx.connection.notes.get(Naughty)
        if (reasons.length === 0) {
          ctx.result('pass', 'not naughty')
          return pass()
        }
        const txn = ctx.transaction
        if ((phase === 'data' || phase === 'data_post') && txn !== undefined && txn.recipients.length > 0) {
          const spared = txn.notes.get(NaughtySpared)
          if (txn.recipients.every((r) => spared.has(sparedKey(r.address)))) {
            ctx.result('skip', 'naughty, but every recipient is spared')
            return pass()
          }
        }
        let text = reasons.join('; ').replace(/[\x00-\x1f\x7f]/g, ' ')
        if (text.length > MAX_TEXT) text = `${text.slice(0, MAX_TEXT - 3)}...`
        ctx.log.info(`refusing naughty connection at ${phase}`)
        return rejectAs(ctx, { reject: '1', reject_type: options.reject_type }, text, codes[phase])
      }
    // data_post always, as the fallback for a connection an earlier plugin let through.
    const dataPost = refuseAt('data_post')
    const refuseRcpt = refuseAt('rcpt')
    const rcpt: RcptHook = (ctx, to) => {
      if (ctx.transaction.notes.get(NaughtySpared).has(sparedKey(to.address))) {
        ctx.result('skip', `naughty, but ${sparedKey(to.address)} is spared`)
        return pass()
      }
      return refuseRcpt(ctx)
    }
    const hooks: Hooks = {
      connect: { dataPost, connect: refuseAt('connect') },
      mail: { dataPost, mail: refuseAt('mail') },
      rcpt: { dataPost, rcpt },
      data: { dataPost, data: refuseAt('data') },
      data_post: { dataPost },
    }[options.reject]
    return { hooks }
  },
})
