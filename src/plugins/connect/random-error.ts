/**
 * connect/random-error (qpsmtpd `random_error`): a testing aid that fails a percentage of
 * messages at random, to see how clients cope: each of connect, HELO/EHLO, MAIL, RCPT, DATA
 * and the end of data fails with the probability that makes the whole message fail `percent`
 * times in a hundred; 2 failures in 5 also close the connection (421), the others answer 450/451.
 * The connection's RandomFailPercent note may be changed by other plugins. A negative percent
 * disables it. Never load it on a server that receives real mail.
 */
import type { HookContext } from '../../host/context.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { Hooks } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import { opt } from '../../host/options.ts'
import { defer, pass, type Verdict } from '../../host/verdict.ts'

/** qpsmtpd's connection note `random_fail_%`: the failure percentage for this connection. */
export const RandomFailPercent = defineKey<number>('random_fail_%', { scope: 'connection', initial: 1 })

/** The hooks a message passes, over which the failure rate is spread (qpsmtpd: six). */
const STEPS = 6

export default definePlugin({
  name: 'connect/random-error',
  aliases: ['random_error'],
  description: 'testing aid: fail a percentage of messages at random',
  options: {
    percent: opt.number({
      positional: 0,
      default: 1,
      description: 'messages in a hundred that fail; negative disables',
    }),
    loglevel: opt.loglevel(),
  },
  timeoutMs: 1_000,
  setup({ options, log }) {
    // qpsmtpd: `$args[0] || 1`, so 0 means the default.
    const percent = options.percent === 0 ? 1 : options.percent
    log.warn(`random_error fails about ${percent}% of messages on purpose`)

    const maybeFail = (ctx: HookContext): Verdict => {
      const success = (1 - ctx.connection.notes.get(RandomFailPercent) / 100) ** (1 / STEPS)
      if (Math.random() < success) return pass()
      ctx.result('fail', 'random failure')
      return Math.random() < 2 / 5 ? defer('random failure', { disconnect: true }) : defer('random failure')
    }

    const hooks: Hooks = {
      connect: (ctx) => {
        ctx.connection.notes.set(RandomFailPercent, percent)
        return maybeFail(ctx)
      },
      helo: maybeFail,
      ehlo: maybeFail,
      mail: maybeFail,
      rcpt: maybeFail,
      data: maybeFail,
      dataPost: maybeFail,
    }
    return { hooks }
  },
})
