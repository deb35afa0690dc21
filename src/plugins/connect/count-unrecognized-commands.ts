/**
 * connect/count-unrecognized-commands (qpsmtpd `count_unrecognized_commands`): counts unknown
 * verbs per connection and, at the Nth (default 4), answers 521 5.5.1 and disconnects (qpsmtpd
 * DENY_DISCONNECT). Catches HTTP proxies and scanners that spray commands at port 25. The core's
 * own unknown-command limit (421) still applies beside it.
 */
import { definePlugin } from '../../host/define-plugin.ts'
import type { HookMap } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import { opt } from '../../host/options.ts'
import { pass, reject } from '../../host/verdict.ts'

/** Unknown commands seen on this connection. */
export const UnrecognizedCount = defineKey<number>('connect/count-unrecognized-commands', {
  scope: 'connection',
  initial: 0,
})

export default definePlugin({
  name: 'connect/count-unrecognized-commands',
  aliases: ['count_unrecognized_commands'],
  description: 'disconnect (521) after N unrecognized commands',
  options: {
    max: opt.number({
      positional: 0,
      default: 4,
      min: 1,
      integer: true,
      description: 'unrecognized commands allowed; the Nth disconnects',
    }),
  },
  setup({ options }) {
    const unrecognizedCommand: HookMap['unrecognizedCommand'] = (ctx, verb) => {
      const n = ctx.get(UnrecognizedCount) + 1
      ctx.set(UnrecognizedCount, n)
      ctx.log.info(`unrecognized command ${JSON.stringify(verb.slice(0, 32))} (${n}/${options.max})`)
      if (n < options.max) return pass()
      ctx.result('fail', `${n} unrecognized commands`)
      return reject(
        { code: 521, enhanced: '5.5.1', text: `Closing connection, ${n} unrecognized commands` },
        { disconnect: true },
      )
    }
    return { hooks: { unrecognizedCommand } }
  },
})
