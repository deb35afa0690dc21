/**
 * rspamd (`content/rspamd`): asks rspamd (`/checkv2` over HTTP, rspamd's normal worker) about each
 * message and does what its action says: `reject` refuses (554), `soft reject` and `greylist`
 * defer (451), `rewrite subject` rewrites it, `add header` adds the X-Rspamd-* fields; rspamd's
 * own header edits (milter.add_headers / remove_headers, from its milter_headers module) are
 * applied as a milter would. The session and envelope go with the message (IP, HELO, sender,
 * recipients, the SMTP AUTH user, the one recipient as Deliver-To, a Settings-ID), so rspamd's
 * per-user and per-listener settings work. New for qpsmtpd users; options as in Haraka's plugin.
 */
import { ScannerError } from '../../clients/exchange.ts'
import { RspamdClient, type RspamdResult } from '../../clients/rspamd/rspamd.ts'
import { adjustKarma, failedCheck, failureOptions, isImmune } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHook } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import type { MessageHeaders } from '../../host/message.ts'
import { opt } from '../../host/options.ts'
import { defer, pass, reject, type Verdict } from '../../host/verdict.ts'
import { scanMetrics } from '../../metrics/index.ts'
import { formatAddress } from '../../protocol/envelope.ts'

/** What rspamd said about this message, for later plugins. */
export const RspamdVerdict = defineKey<RspamdResult | undefined>('content/rspamd', {
  scope: 'transaction',
  initial: undefined,
})

/** Haraka's spam bar: one `+` per point above 1, one `-` per point below -1, else `/`. */
const bar = (score: number): string =>
  score >= 1
    ? '+'.repeat(Math.min(Math.floor(score), 50))
    : score <= -1
      ? '-'.repeat(Math.min(Math.floor(-score), 50))
      : '/'

/** rspamd's milter header edits: removals first, then additions (insert at `order`, else append). */
function applyMilterEdits(headers: MessageHeaders, r: RspamdResult): void {
  for (const { name, index } of r.removeHeaders) {
    if (index === 0) headers.remove(name)
    else if (index > 0) headers.remove(name, index - 1)
    else {
      const at = headers.count(name) + index
      if (at >= 0) headers.remove(name, at)
    }
  }
  for (const { name, value, order } of r.addHeaders) {
    if (order === undefined) headers.add(name, value)
    else headers.insert(order, name, value)
  }
}

export default definePlugin({
  name: 'content/rspamd',
  aliases: ['rspamd'],
  description:
    'scan messages with rspamd and apply its action (reject, soft reject, greylist, rewrite subject, add header)',
  options: {
    host: opt.string({ default: 'localhost', description: "rspamd's normal worker" }),
    port: opt.number({ default: 11333, min: 1, max: 65535, integer: true }),
    unix_socket: opt.optionalString({
      description: "rspamd's normal worker on a Unix socket (instead of host and port)",
    }),
    timeout: opt.number({ default: 20, min: 0.1, max: 600, description: 'seconds for one request' }),
    max_size: opt.number({ default: 5120, min: 1, description: 'larger messages (KB) are not scanned' }),
    reject: opt.boolean({ default: true, description: 'refuse when rspamd says reject (no: treat it as add header)' }),
    soft_reject: opt.boolean({ default: true, description: 'defer when rspamd says soft reject' }),
    greylist: opt.boolean({ default: true, description: 'defer when rspamd says greylist' }),
    rewrite_subject: opt.boolean({ default: true, description: 'rewrite the Subject when rspamd says so' }),
    subject: opt.string({
      default: '*** SPAM *** %s',
      description: 'the new Subject when rspamd sends none (%s: the old one)',
    }),
    add_headers: opt.enum(['sometimes', 'always', 'never'], {
      default: 'sometimes',
      description: 'X-Rspamd-Score, -Bar and -Report: on add header and rewrite subject, always, or never',
    }),
    milter_headers: opt.boolean({ default: true, description: "apply rspamd's own header edits" }),
    smtp_message: opt.boolean({ default: true, description: "refuse with rspamd's message text when it gives one" }),
    settings_id: opt.optionalString({ description: "sent as Settings-ID: selects one of rspamd's settings rules" }),
    relayclient: opt.enum(['skip', 'scan'], {
      default: 'skip',
      description: 'relay clients (and whitelisted hosts or senders): not scanned, or scanned',
    }),
    ...failureOptions,
    loglevel: opt.loglevel(),
  },
  timeoutMs: 620_000,
  concurrent: true,
  setup({ options, metrics, name }) {
    const client = new RspamdClient({
      server:
        options.unix_socket === undefined
          ? { url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}` }
          : { socketPath: options.unix_socket },
    })
    const recorded = scanMetrics(metrics, name)
    const text = (r: RspamdResult, fallback: string) =>
      options.smtp_message && r.smtpMessage !== undefined && r.smtpMessage !== '' ? r.smtpMessage : fallback

    const dataPost: DataPostHook = async (ctx, msg) => {
      if (options.relayclient === 'skip' && isImmune(ctx)) {
        recorded.record('skipped')
        ctx.result('skip', 'immune')
        return pass()
      }
      if (msg.size > options.max_size * 1024) {
        recorded.record('skipped')
        ctx.result('skip', `too large (${msg.size} > ${options.max_size * 1024} bytes)`)
        return pass()
      }
      const { connection: c, transaction: txn } = ctx
      const rcpt = txn.recipients.map((r) => formatAddress(r.address))
      const started = performance.now()
      let r: RspamdResult
      try {
        r = await client.check(
          msg.stream(),
          msg.size,
          {
            ip: c.remote.ip,
            helo: c.helo?.host,
            hostname: c.remoteHost,
            from: formatAddress(txn.mailFrom.address),
            rcpt,
            queueId: txn.id,
            user: c.auth?.user,
            deliverTo: rcpt.length === 1 ? rcpt[0] : undefined,
            settingsId: options.settings_id,
            mtaName: ctx.server.me,
            tlsCipher: c.tls?.cipher,
            tlsVersion: c.tls?.version,
          },
          { timeoutMs: options.timeout * 1000, signal: ctx.signal },
        )
      } catch (e) {
        const ms = performance.now() - started
        recorded.record('failed', ms / 1000)
        if (!(e instanceof ScannerError)) throw e
        return failedCheck(ctx, options, 'spam scanner', `${e.failure}: ${e.message} (${ms.toFixed(0)} ms)`)
      }
      const ms = performance.now() - started
      const spammy = r.action !== 'no action'
      recorded.record(spammy ? 'spam' : 'ham', ms / 1000)
      ctx.set(RspamdVerdict, r)
      if (r.action === 'reject' || r.action === 'add header' || r.action === 'rewrite subject') adjustKarma(ctx, -1)

      if (options.milter_headers) applyMilterEdits(msg.headers, r)
      const rewrite = r.action === 'rewrite subject' && options.rewrite_subject
      if (rewrite) {
        const old = msg.headers.first('Subject') ?? ''
        const subject = r.subject ?? options.subject.replace('%s', old)
        if (!msg.headers.change('Subject', 0, subject)) msg.headers.add('Subject', subject)
      }
      const marked =
        r.action === 'add header' || r.action === 'rewrite subject' || (r.action === 'reject' && !options.reject)
      if (options.add_headers === 'always' || (options.add_headers === 'sometimes' && marked)) {
        msg.headers.remove('X-Rspamd-Score')
        msg.headers.remove('X-Rspamd-Bar')
        msg.headers.remove('X-Rspamd-Report')
        msg.headers.add('X-Rspamd-Score', `${r.score.toFixed(2)} / ${r.requiredScore.toFixed(2)}`)
        msg.headers.add('X-Rspamd-Bar', bar(r.score))
        if (r.symbols.length > 0) msg.headers.add('X-Rspamd-Report', r.symbols.join(' '))
      }

      const summary = `${r.action}, ${r.score} / ${r.requiredScore}${r.skipped ? ', skipped by rspamd' : ''}, ${ms.toFixed(0)} ms`
      const refusal = ((): Verdict | undefined => {
        if (r.action === 'reject' && options.reject)
          return reject({ code: 554, enhanced: '5.7.1', text: text(r, 'Detected as spam') })
        if (r.action === 'soft reject' && options.soft_reject)
          return defer({ code: 451, enhanced: '4.7.1', text: text(r, 'Deferred by policy, try again later') })
        if (r.action === 'greylist' && options.greylist)
          return defer({ code: 451, enhanced: '4.7.1', text: text(r, 'Greylisted, try again later') })
        return undefined
      })()
      if (refusal !== undefined) {
        ctx.result('fail', summary)
        return refusal
      }
      ctx.result(spammy ? 'fail' : 'pass', spammy ? `${summary} (tolerated)` : summary)
      return pass()
    }

    return { hooks: { dataPost }, close: () => client.close() }
  },
})
