/**
 * data/loop (qpsmtpd `loop`, older `check_loop`): refuses a message that has passed through
 * too many hops: its Received and Delivered-To fields, ours included, number at least
 * `max_hops` (default 100, as qmail-smtpd). `554 5.4.6 Too many hops`. The core's own
 * `hop_limit` (smtpd.conf, counting the Received fields that came in) refuses earlier when set
 * lower; this plugin adds qmail's Delivered-To count.
 */
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { pass, reject } from '../../host/verdict.ts'

export default definePlugin({
  name: 'data/loop',
  aliases: ['loop', 'check_loop'],
  description: 'refuse messages with too many Received and Delivered-To fields',
  options: {
    max_hops: opt.number({ positional: 0, default: 100, min: 1, integer: true, description: 'hops allowed' }),
    loglevel: opt.loglevel(),
  },
  timeoutMs: 5_000,
  setup({ options }) {
    const dataPost: DataPostHook = (ctx, msg) => {
      const hops = msg.headers.count('Received') + msg.headers.count('Delivered-To')
      if (hops < options.max_hops) {
        ctx.result('pass', `${hops} hops`)
        return pass()
      }
      ctx.result('fail', `${hops} hops`)
      return reject({ code: 554, enhanced: '5.4.6', text: 'Too many hops' })
    }
    return { hooks: { dataPost } }
  },
})
