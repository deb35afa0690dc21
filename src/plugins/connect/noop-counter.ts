/**
 * connect/noop-counter (qpsmtpd `noop_counter`): disconnects a client after N consecutive NOOPs
 * (default 3), a cheap way to shed bots that hold connections open. HELO, EHLO, MAIL, RCPT, DATA,
 * a transaction reset, VRFY and HELP reset the count (the hooks qpsmtpd binds); load it early so
 * no earlier plugin's verdict skips the reset. STARTTLS, AUTH and unknown verbs do not reset it.
 */
import type { HookContext } from '../../host/context.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { Hooks } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import { opt } from '../../host/options.ts'
import { pass, reject, type Verdict } from '../../host/verdict.ts'

/** Consecutive NOOPs on this connection. */
export const NoopCount = defineKey<number>('connect/noop-counter', { scope: 'connection', initial: 0 })

export default definePlugin({
  name: 'connect/noop-counter',
  aliases: ['noop_counter'],
  description: 'disconnect after N consecutive NOOP commands',
  options: {
    limit: opt.number({
      positional: 0,
      default: 3,
      min: 1,
      integer: true,
      description: 'consecutive NOOPs allowed; the Nth disconnects',
    }),
  },
  setup({ options }) {
    const noop = (ctx: HookContext): Verdict => {
      const n = ctx.get(NoopCount) + 1
      ctx.set(NoopCount, n)
      if (n < options.limit) return pass()
      ctx.result('fail', `${n} consecutive NOOPs`)
      return reject(
        { code: 500, enhanced: '5.7.0', text: 'Stop wasting my time, too many consecutive NOOPs' },
        { disconnect: true },
      )
    }
    const reset = (ctx: HookContext): Verdict => {
      ctx.set(NoopCount, 0)
      return pass()
    }
    const hooks: Hooks = {
      noop,
      helo: reset,
      ehlo: reset,
      mail: reset,
      rcpt: reset,
      data: reset,
      vrfy: reset,
      help: reset,
      resetTransaction: (ctx) => void reset(ctx),
    }
    return { hooks }
  },
})
