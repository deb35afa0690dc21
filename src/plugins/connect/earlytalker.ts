/**
 * connect/earlytalker (qpsmtpd `earlytalker`, `check_earlytalker`, `async/earlytalker`): waits
 * `wait` seconds before the greeting (check-at CONNECT, the default) and/or before the 354 of
 * DATA (check-at DATA) and fails a client that talks meanwhile: a ratware client that pipelines
 * its whole dialogue without waiting. The wait is a timer: other sessions go on meanwhile.
 * `reject 1` refuses at once (554 at connect, 554 at DATA); `defer-reject 1` greets normally and
 * refuses every MAIL; `reject 0` (qpsmtpd's old `action log`) logs it and lets the session go on;
 * `reject naughty` leaves it to the naughty plugin. When the plugin has judged a client that
 * talked before the greeting, the core's enforce_sync does not refuse it a second time.
 * Relay clients, whitelisted hosts and (at connect) clients with a karma history above 5 are
 * not checked.
 */
import type { HookContext } from '../../host/context.ts'
import { adjustKarma, isImmune, KarmaHistory, rejectAs, rejectOptions } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { ConnectHook, DataHook, Hooks, MailHook } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import { opt } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import type { EnhancedCode } from '../../protocol/reply.ts'

/** qpsmtpd's connection note `earlytalker`: the client talked before it was spoken to. */
export const EarlyTalker = defineKey<boolean>('earlytalker', { scope: 'connection', initial: false })

const TEXT = 'Connecting host started transmitting before SMTP greeting'
type Codes = { perm: [number, EnhancedCode]; temp: [number, EnhancedCode] }
const connectCodes: Codes = { perm: [554, '5.7.1'], temp: [421, '4.7.0'] }
const dataCodes: Codes = { perm: [554, '5.7.1'], temp: [451, '4.7.1'] }

/**
 * qpsmtpd's argument quirks: `check-at` may be repeated (CONNECT and DATA), and the old
 * `action deny|denysoft|log` stands for reject/reject_type when those are not given.
 */
export function translateEarlytalkerArgs(args: readonly string[]): readonly string[] {
  const out: string[] = []
  const checkAt: string[] = []
  let action: string | undefined
  for (let i = 0; i < args.length; i += 2) {
    const key = (args[i] ?? '').replace(/_/g, '-').toLowerCase()
    const value = args[i + 1]
    if (value === undefined) return args // let the option parser name the missing value
    if (key === 'check-at') checkAt.push(value)
    else if (key === 'action') action = value.toLowerCase()
    else out.push(args[i] as string, value)
  }
  if (checkAt.length > 0) out.push('check-at', checkAt.join(','))
  if (action !== undefined) {
    const given = (k: string) => out.some((a, i) => i % 2 === 0 && a.replace(/-/g, '_') === k)
    if (!['deny', 'denysoft', 'log'].includes(action))
      throw new Error(`option "action": expected deny, denysoft or log, got "${action}"`)
    if (!given('reject')) out.push('reject', action === 'log' ? '0' : '1')
    if (!given('reject_type')) out.push('reject_type', action === 'denysoft' ? 'temp' : 'perm')
  }
  return out
}

export default definePlugin({
  name: 'connect/earlytalker',
  aliases: ['earlytalker', 'check_earlytalker', 'async/earlytalker'],
  description: 'refuse or log clients that talk before the greeting (or before the 354 of DATA)',
  options: {
    wait: opt.number({ default: 1, min: 0, max: 20, description: 'seconds to wait for the client to talk' }),
    'check-at': opt.list({ default: ['CONNECT'], description: 'CONNECT and/or DATA' }),
    'defer-reject': opt.boolean({ default: false, description: 'greet normally and refuse every MAIL instead' }),
    ...rejectOptions,
  },
  translateArgs: translateEarlytalkerArgs,
  timeoutMs: 30_000,
  setup({ options }) {
    const at = new Set(options['check-at'].map((v) => v.toUpperCase()))
    for (const v of at)
      if (v !== 'CONNECT' && v !== 'DATA') throw new Error(`check-at: expected CONNECT or DATA, got "${v}"`)
    const waitMs = options.wait * 1000

    const caught = (ctx: HookContext): void => {
      ctx.connection.notes.set(EarlyTalker, true)
      adjustKarma(ctx, -1)
      ctx.log.info('remote started talking before we said hello')
    }

    const connect: ConnectHook = async (ctx) => {
      if (isImmune(ctx)) {
        ctx.result('skip', 'immune')
        return pass()
      }
      const history = ctx.connection.notes.get(KarmaHistory)
      if (history !== undefined && history > 5) {
        ctx.result('skip', `karma history ${history}`)
        return pass()
      }
      if (!(await ctx.clientSpoke(waitMs))) {
        ctx.result('pass', 'not spontaneous')
        return pass()
      }
      caught(ctx)
      // Judged here: refused now, later at MAIL, by naughty, or tolerated; not by enforce_sync.
      if (options['defer-reject'] || options.reject !== '1') ctx.excuseEarlyTalk()
      if (options['defer-reject']) {
        ctx.result('fail', 'talked early, refused at MAIL')
        return pass()
      }
      return rejectAs(ctx, options, TEXT, connectCodes)
    }

    const mail: MailHook = (ctx) => (ctx.connection.notes.get(EarlyTalker) ? rejectAs(ctx, options, TEXT) : pass())

    const data: DataHook = async (ctx) => {
      if (isImmune(ctx)) return pass()
      if (!(await ctx.clientSpoke(waitMs))) {
        ctx.result('pass', 'not spontaneous')
        return pass()
      }
      caught(ctx)
      return rejectAs(ctx, options, TEXT, dataCodes)
    }

    const hooks: Hooks = {
      ...(at.has('CONNECT') ? { connect } : {}),
      ...(at.has('CONNECT') && options['defer-reject'] ? { mail } : {}),
      ...(at.has('DATA') ? { data } : {}),
    }
    return { hooks }
  },
})
