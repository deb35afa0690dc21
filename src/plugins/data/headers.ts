/**
 * data/headers (qpsmtpd `headers`, older `check_basicheaders`): refuses a message without the
 * required header fields (default From; `require From,Date,...`), with a singular field
 * (Date, From, Sender, Reply-To, To, Cc, Bcc, Message-Id, In-Reply-To, References, Subject)
 * more than once (RFC 5322 §3.6), or, with `past N` / `future N`, whose Date is more than N
 * days in the past or future. An empty message is refused too. Relay clients and whitelisted
 * hosts or senders are not checked. `reject`/`reject_type` as in qpsmtpd: 554 or 451.
 */
import { isImmune, rejectAs, rejectOptions } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import type { EnhancedCode } from '../../protocol/reply.ts'

const SINGULAR = [
  'Date',
  'From',
  'Sender',
  'Reply-To',
  'To',
  'Cc',
  'Bcc',
  'Message-Id',
  'In-Reply-To',
  'References',
  'Subject',
]
const DAY_MS = 86_400_000
const codes: { perm: [number, EnhancedCode]; temp: [number, EnhancedCode] } = {
  perm: [554, '5.6.0'],
  temp: [451, '4.6.0'],
}

export default definePlugin({
  name: 'data/headers',
  aliases: ['headers', 'check_basicheaders'],
  description: 'required and singular header fields, Date within past/future days',
  options: {
    require: opt.list({ default: ['From'], description: 'header fields a message must have (comma-separated)' }),
    past: opt.number({
      default: 0,
      min: 0,
      description: 'refuse a Date more than this many days old (0: not checked)',
    }),
    future: opt.number({
      default: 0,
      min: 0,
      description: 'refuse a Date more than this many days ahead (0: not checked)',
    }),
    ...rejectOptions,
  },
  timeoutMs: 5_000,
  setup({ options }) {
    const dateProblem = (value: string | undefined): string | undefined => {
      if (value === undefined || (options.past === 0 && options.future === 0)) return undefined
      const at = Date.parse(value.trim())
      if (Number.isNaN(at)) return undefined
      const now = Date.now()
      if (options.past > 0 && at < now - options.past * DAY_MS) return 'The Date header is too far in the past'
      if (options.future > 0 && at > now + options.future * DAY_MS) return 'The Date header is too far in the future'
      return undefined
    }

    const dataPost: DataPostHook = (ctx, msg) => {
      if (msg.size === 0) return rejectAs(ctx, options, 'You must send some data first', codes)
      if (isImmune(ctx)) {
        ctx.result('skip', 'immune')
        return pass()
      }
      const date = dateProblem(msg.headers.first('Date'))
      if (date !== undefined) return rejectAs(ctx, options, date, codes)
      const problems = [
        ...options.require
          .filter((name) => msg.headers.get(name).every((v) => v.trim() === ''))
          .map((name) => `We require a valid ${name} header`),
        ...SINGULAR.filter((name) => msg.headers.count(name) > 1).map(
          (name) => `Only one ${name} header allowed. See RFC 5322, Section 3.6`,
        ),
      ]
      if (problems.length === 0) {
        ctx.result('pass')
        return pass()
      }
      return rejectAs(ctx, options, problems.join('; '), codes)
    }

    return { hooks: { dataPost } }
  },
})
