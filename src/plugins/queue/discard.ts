/**
 * queue/discard: accepts every message and drops it (tests, sink hosts, trap addresses).
 * The client gets the same `250 2.0.0 Queued as <id>` as from a real queue, so a sender cannot
 * tell its mail was dropped; with `log 1` (the default) each drop is logged at info level.
 * Nothing is stored: load it only where losing the mail is the intent.
 */
import { definePlugin } from '../../host/define-plugin.ts'
import { opt } from '../../host/options.ts'
import { accept } from '../../host/verdict.ts'
import { formatAddress } from '../../protocol/envelope.ts'

export default definePlugin({
  name: 'queue/discard',
  description: 'accepts and drops every message',
  options: { log: opt.boolean({ default: true, description: 'log each discarded message (info level)' }) },
  setup({ options }) {
    return {
      hooks: {
        queue: (ctx, msg) => {
          const txn = ctx.transaction
          if (options.log) {
            ctx.result('pass', 'discarded')
            ctx.log.info(
              `message ${txn.id} discarded: ${msg.size} octets from <${formatAddress(txn.mailFrom.address)}> ` +
                `to ${txn.recipients.length} recipient(s)`,
            )
          }
          return accept({ text: `Queued as ${txn.id}` })
        },
      },
    }
  },
})
