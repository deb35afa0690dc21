/**
 * data/bogus-bounce (qpsmtpd `bogus_bounce`): a bounce (null sender) must have exactly one
 * recipient and no Return-Path other than `<>` (RFC 3834 §3.1.3, RFC 5321 §4.5.5). The action
 * is the first argument: `log` (the default), `deny` (554) or `denysoft` (451); qpsmtpd's
 * `reject`/`reject_type` pairs work too when no action is given.
 */
import { rejectAs, rejectOptions } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import type { EnhancedCode } from '../../protocol/reply.ts'

const codes: { perm: [number, EnhancedCode]; temp: [number, EnhancedCode] } = {
  perm: [554, '5.7.1'],
  temp: [451, '4.7.1'],
}

export default definePlugin({
  name: 'data/bogus-bounce',
  aliases: ['bogus_bounce', 'check_bogus_bounce'],
  description: 'refuse bounces with more than one recipient or a Return-Path',
  options: {
    action: opt.enum(['log', 'deny', 'denysoft', ''], { default: '', description: 'log, deny or denysoft' }),
    reject: opt.enum(['0', '1', 'naughty'], { default: '0', description: 'used when no action is given' }),
    reject_type: rejectOptions.reject_type,
    loglevel: rejectOptions.loglevel,
  },
  // qpsmtpd: one bare argument is the action; otherwise key/value pairs.
  translateArgs: (args) => (args.length % 2 === 1 ? ['action', ...args] : args),
  timeoutMs: 5_000,
  setup({ options }) {
    const policy =
      options.action === ''
        ? options
        : ({
            reject: options.action === 'log' ? '0' : '1',
            reject_type: options.action === 'denysoft' ? 'temp' : 'perm',
          } as const)

    const dataPost: DataPostHook = (ctx, msg) => {
      if (ctx.transaction.mailFrom.address !== null) {
        ctx.result('skip', 'not a bounce')
        return pass()
      }
      if (ctx.transaction.recipients.length !== 1)
        return rejectAs(ctx, policy, 'fail, this bounce message does not have 1 recipient', codes)
      const returnPath = msg.headers.first('Return-Path')?.trim()
      if (returnPath !== undefined && returnPath !== '<>')
        return rejectAs(ctx, policy, 'a bounce return path must be empty (RFC 3834)', codes)
      ctx.result('pass', 'single recipient, empty Return-Path')
      return pass()
    }
    return { hooks: { dataPost } }
  },
})
