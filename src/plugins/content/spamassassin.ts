/**
 * spamassassin (`content/spamassassin`): scores each message with SpamAssassin's spamd (SPAMC/1.5
 * `HEADERS`, the message streamed from the spool), adds spamd's X-Spam-* fields, keeps the
 * score for karma, later plugins (`SpamAssassinScore`) and the summary line, marks the Subject
 * above `munge_subject_threshold` and refuses at `reject`. qpsmtpd's plugin and arguments.
 *
 * Differs from qpsmtpd: a spamd that cannot answer defers (451) unless `on_error pass` (qpsmtpd
 * accepted unscanned mail then); every call has a deadline (`timeout`); foreign X-Spam-* fields
 * of the message are told from spamd's own by comparing them with the message as received.
 */
import { userInfo } from 'node:os'
import { ScannerError } from '../../clients/exchange.ts'
import { type SpamdField, type SpamdResult, spamdHeaders } from '../../clients/spamd/spamd.ts'
import { adjustKarma, failedCheck, failureOptions, isImmune, rejectTypes } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHook } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import type { MessageHeaders } from '../../host/message.ts'
import { opt } from '../../host/options.ts'
import { defer, pass, reject, type Verdict } from '../../host/verdict.ts'
import { scanMetrics } from '../../metrics/index.ts'
import { type ConnectTarget, parseTarget } from '../../net/index.ts'
import { formatAddress } from '../../protocol/envelope.ts'

export interface SpamAssassinVerdict {
  readonly isSpam: boolean
  readonly score: number
  /** spamd's required score (the spamd user's, with per-user preferences). */
  readonly required: number
  readonly tests: readonly string[]
  /** SpamAssassin's auto-learning outcome (`ham`, `spam`, `no`, `disabled`...), when reported. */
  readonly autolearn: string | undefined
}

/** What spamd said about this message (qpsmtpd's `spamassassin` transaction note). */
export const SpamAssassinScore = defineKey<SpamAssassinVerdict | undefined>('content/spamassassin', {
  scope: 'transaction',
  initial: undefined,
})

const NUMBER = /^-?\d+(?:\.\d+)?$/
const optionalNumber = (name: string, raw: string | undefined): number | undefined => {
  if (raw === undefined) return undefined
  if (!NUMBER.test(raw)) throw new Error(`option "${name}": expected a number, got "${raw}"`)
  return Number(raw)
}

/** `Yes, score=7.3 required=5.0 tests=A,B autolearn=no version=4.0.1` (values unfolded). */
export function parseSpamStatus(value: string): { tests: string[]; autolearn: string | undefined } {
  const words = value.replace(/,\s+/g, ',').split(/\s+/)
  const field = (key: string) => words.find((w) => w.startsWith(`${key}=`))?.slice(key.length + 1)
  const tests = field('tests')
  return { tests: tests === undefined || tests === 'none' ? [] : tests.split(','), autolearn: field('autolearn') }
}

/** spamd's X-Spam-* fields that the message did not already carry with the same value. */
function addedBySpamd(returned: readonly SpamdField[], received: MessageHeaders): SpamdField[] {
  const norm = (v: string) => v.replace(/\s+/g, ' ').trim()
  const before = new Map<string, string[]>()
  for (const f of returned) {
    const key = f.name.toLowerCase()
    if (!key.startsWith('x-spam-') || before.has(key)) continue
    before.set(key, received.get(f.name).map(norm))
  }
  const kept: SpamdField[] = []
  for (const f of returned) {
    const old = before.get(f.name.toLowerCase())
    if (old === undefined || f.name.toLowerCase() === 'x-spam-prev-subject') continue
    const i = old.indexOf(norm(f.value))
    if (i >= 0) {
      old.splice(i, 1)
      continue
    }
    kept.push(f)
  }
  return kept
}

export default definePlugin({
  name: 'content/spamassassin',
  aliases: ['spamassassin'],
  description: "score messages with SpamAssassin's spamd; add X-Spam-* headers, refuse above a threshold",
  options: {
    reject: opt.optionalString({ description: 'refuse at this score or above (default: never)' }),
    reject_threshold: opt.optionalString({ description: "qpsmtpd's older name of reject" }),
    reject_type: opt.enum(rejectTypes, { default: 'perm', description: 'how a refusal is sent' }),
    munge_subject_threshold: opt.optionalString({ description: 'prefix the Subject above this score' }),
    subject_prefix: opt.optionalString({
      description: 'the Subject prefix (default: config/subject_prefix, else *** SPAM ***)',
    }),
    spamd_socket: opt.string({ default: 'localhost:783', description: 'a Unix socket path, or host:port' }),
    spamd_user: opt.optionalString({
      description: 'the spamd user whose preferences apply; vpopmail: the recipient (one-recipient messages)',
    }),
    headers: opt.enum(['all', 'none'], { default: 'all', description: 'none: add no X-Spam-* fields' }),
    leave_old_headers: opt.enum(['rename', 'drop', 'keep'], {
      default: 'rename',
      description: "the message's own X-Spam-* fields: X-Old-Spam-*, removed, or kept",
    }),
    relayclient: opt.enum(['skip'], {
      default: 'skip',
      description: 'relay clients are not scanned (qpsmtpd: they are immune anyway)',
    }),
    size_limit: opt.number({ default: 500_000, min: 1, integer: true, description: 'larger messages are not scanned' }),
    timeout: opt.number({ default: 30, min: 0.1, max: 600, description: 'seconds for one spamd request' }),
    ...failureOptions,
    loglevel: opt.loglevel(),
  },
  timeoutMs: 620_000,
  concurrent: true,
  setup({ options, config, net, metrics, name }) {
    const target: ConnectTarget = parseTarget(options.spamd_socket, 783)
    const rejectAt = optionalNumber('reject', options.reject ?? options.reject_threshold)
    const mungeAbove = optionalNumber('munge_subject_threshold', options.munge_subject_threshold)
    const prefix = options.subject_prefix ?? config.lines('subject_prefix')[0]?.trim() ?? '*** SPAM ***'
    const processUser = userInfo().username
    const recorded = scanMetrics(metrics, name)
    const addHeaders = options.headers === 'all'

    const refuse = (text: string): Verdict => {
      switch (options.reject_type) {
        case 'temp':
        case 'soft':
          return defer({ code: 451, enhanced: '4.7.1', text })
        case 'temp_disconnect':
          return defer({ code: 421, enhanced: '4.7.1', text }, { disconnect: true })
        case 'disconnect':
          return reject({ code: 554, enhanced: '5.7.1', text }, { disconnect: true })
        case 'perm':
        case 'hard':
          return reject({ code: 554, enhanced: '5.7.1', text })
      }
    }

    /** qpsmtpd's leave_old_headers for one field name (any case: the X-Old- name keeps the message's). */
    const clearOld = (headers: MessageHeaders, field: string) => {
      if (options.leave_old_headers === 'keep') return
      const old = headers.get(field)
      if (old.length === 0) return
      headers.remove(field)
      if (options.leave_old_headers === 'drop') return
      const name = headers.fields.find((f) => f.name.toLowerCase() === field)?.name ?? field
      const renamed = /^x-/i.test(name) ? `X-Old-${name.slice(2)}` : `Old-${name}`
      for (const value of old) headers.prepend(renamed, value)
    }

    const dataPost: DataPostHook = async (ctx, msg) => {
      if (isImmune(ctx)) {
        recorded.record('skipped')
        ctx.result('skip', 'immune')
        return pass()
      }
      if (msg.size > options.size_limit) {
        recorded.record('skipped')
        ctx.result('skip', `too large (${msg.size} > ${options.size_limit} bytes)`)
        return pass()
      }
      const txn = ctx.transaction
      const first = txn.recipients[0]
      const perRecipient = options.spamd_user === 'vpopmail' && txn.recipients.length === 1 && first !== undefined
      const user = perRecipient ? formatAddress(first.address) : (options.spamd_user ?? processUser)
      const envelopeFrom = Buffer.from(`X-Envelope-From: <${formatAddress(txn.mailFrom.address)}>\r\n`)
      const started = performance.now()
      let result: SpamdResult
      try {
        result = await spamdHeaders(
          { stream: msg.stream({ prepend: [envelopeFrom] }), length: envelopeFrom.length + msg.size },
          { connect: net.connect, target, timeoutMs: options.timeout * 1000, signal: ctx.signal, user },
        )
      } catch (e) {
        const ms = performance.now() - started
        recorded.record('failed', ms / 1000)
        if (!(e instanceof ScannerError)) throw e
        return failedCheck(ctx, options, 'spam scanner', `${e.failure}: ${e.message} (${ms.toFixed(0)} ms)`)
      }
      const ms = performance.now() - started
      recorded.record(result.isSpam ? 'spam' : 'ham', ms / 1000)
      const fields = addedBySpamd(result.fields, msg.headers)
      const status = fields.find((f) => f.name.toLowerCase() === 'x-spam-status')
      const { tests, autolearn } = parseSpamStatus(status?.value ?? '')
      ctx.set(SpamAssassinScore, {
        isSpam: result.isSpam,
        score: result.score,
        required: result.threshold,
        tests,
        autolearn,
      })

      if (addHeaders) {
        const several = txn.recipients.length > 1
        const names = new Set(fields.map((f) => f.name.toLowerCase()))
        if (several) names.add('x-spam-user')
        for (const field of names) clearOld(msg.headers, field)
        // In reverse, each on top: spamd's fields end up first, in spamd's order.
        for (const f of [...fields].reverse()) msg.headers.prepend(f.name, f.value)
        if (several) msg.headers.prepend('X-Spam-User', `${user}, ${txn.recipients.length} recipients`)
        if (mungeAbove !== undefined && result.score > result.threshold && result.score > mungeAbove) {
          const subject = msg.headers.first('Subject')
          const munged = subject === undefined ? prefix : `${prefix} ${subject.trim()}`
          if (!msg.headers.change('Subject', 0, munged)) msg.headers.add('Subject', munged)
        }
      }

      if (result.isSpam) adjustKarma(ctx, -1)
      if (autolearn === 'ham') adjustKarma(ctx, 1)
      if (autolearn === 'spam') adjustKarma(ctx, -1)
      const learned = autolearn === undefined ? '' : `, autolearn=${autolearn}`
      const summary = `${result.isSpam ? 'Spam' : 'Ham'}, ${result.score} / ${result.threshold}${learned}, ${ms.toFixed(0)} ms`
      if (rejectAt !== undefined && result.score >= rejectAt) {
        ctx.result('fail', `${summary}, >= ${rejectAt}`)
        return refuse('spam score exceeded threshold')
      }
      ctx.result(result.isSpam ? 'fail' : 'pass', result.isSpam ? `${summary} (tolerated)` : summary)
      return pass()
    }

    return { hooks: { dataPost } }
  },
})
