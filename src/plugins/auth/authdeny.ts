/**
 * auth/authdeny (qpsmtpd's): the last word on AUTH. qpsmtpd's plugin declined every attempt with
 * a warning, so that an attempt no backend had accepted was refused and logged; here the core
 * refuses such an attempt itself (535 5.7.8), and authdeny writes the warning: `fail: cannot
 * authenticate "user" (MECHANISM)` for every AUTH that failed (its `authOutcome` hook, which only
 * watches). It offers no mechanism of its own: a client would choose one no backend completes.
 */
import { definePlugin } from '../../host/define-plugin.ts'
import type { AuthOutcomeHook } from '../../host/hook-map.ts'
import { pass } from '../../host/verdict.ts'

const authOutcome: AuthOutcomeHook = (ctx, outcome) => {
  if (outcome.success) return pass()
  const who = outcome.user === undefined ? '' : ` ${JSON.stringify(outcome.user.slice(0, 64))}`
  ctx.log.warn(`fail: cannot authenticate${who} (${outcome.mechanism})`)
  ctx.result('fail', `cannot authenticate${who}`)
  return pass()
}

export default definePlugin({
  name: 'auth/authdeny',
  aliases: ['authdeny'],
  description: 'log every AUTH that no backend accepted (the core refuses it)',
  options: {},
  setup: () => ({ hooks: { authOutcome } }),
})
