/**
 * virus/clamdscan: scans each message with ClamAV's daemon, clamd, over `zINSTREAM` (a Unix
 * socket or TCP): the whole message is streamed from the spool, so clamd needs no access to our
 * files. A virus is refused (`deny_viruses yes`) or marked with X-Virus-Found/-Details; a clean
 * message gets X-Virus-Found: No and X-Virus-Checked. qpsmtpd's plugin and arguments.
 *
 * Differs from qpsmtpd: clamd failing defers (451) unless `on_error pass` / `defer_on_error 0`
 * (qpsmtpd accepted unscanned mail by default); every scan has a deadline; clamd's version is
 * asked once an hour, not before every message; a naughty client's messages are still scanned
 * (qpsmtpd skipped them, so without the naughty plugin a client that sent one virus had its
 * next messages accepted unscanned).
 */
import { type ClamdVerdict, clamdScan, clamdVersion } from '../../clients/clamd/clamd.ts'
import { ScannerError } from '../../clients/exchange.ts'
import { adjustKarma, failedCheck, failureOptions, Naughty } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { pass, reject } from '../../host/verdict.ts'
import { isMultipart } from '../../message/content-type.ts'
import { scanMetrics } from '../../metrics/index.ts'
import { type ConnectTarget, parseTarget } from '../../net/index.ts'

const VERSION_TTL_MS = 3_600_000

export default definePlugin({
  name: 'virus/clamdscan',
  description: "scan messages with ClamAV's clamd (INSTREAM); refuse or mark viruses",
  options: {
    clamd_socket: opt.string({ default: '/var/run/clamav/clamd.ctl', description: "clamd's LocalSocket" }),
    clamd_host: opt.string({ default: 'localhost', description: 'with clamd_port: where clamd listens on TCP' }),
    clamd_port: opt.optionalString({ description: 'TCP port of clamd (3310); when given, clamd_socket is not used' }),
    deny_viruses: opt.boolean({ default: true, description: 'yes: refuse infected messages; no: mark them' }),
    defer_on_error: opt.optionalString({ description: "qpsmtpd's switch for on_error: 1/yes defer, 0/no pass" }),
    max_size: opt.number({ default: 1024, min: 1, description: 'larger messages (KB) are not scanned' }),
    scan_all: opt.boolean({ default: true, description: 'no: scan only multipart messages' }),
    timeout: opt.number({ default: 30, min: 0.1, max: 600, description: 'seconds for one scan' }),
    ...failureOptions,
    loglevel: opt.loglevel(),
  },
  timeoutMs: 620_000,
  concurrent: true,
  setup({ options, net, metrics, clock, name }) {
    const target: ConnectTarget =
      options.clamd_port === undefined
        ? { path: options.clamd_socket }
        : parseTarget(`${options.clamd_host}:${options.clamd_port}`, 3310)
    const deferOnError = options.defer_on_error?.trim().toLowerCase()
    if (deferOnError !== undefined && !['0', '1', 'yes', 'no'].includes(deferOnError))
      throw new Error(`option "defer_on_error": expected 0, 1, yes or no, got "${options.defer_on_error}"`)
    const policy = {
      on_error: deferOnError === undefined ? options.on_error : ['1', 'yes'].includes(deferOnError) ? 'defer' : 'pass',
    } as const
    const recorded = scanMetrics(metrics, name)
    const timeoutMs = options.timeout * 1000
    let version: { readonly text: string; readonly at: number } | undefined

    /** "ClamAV 1.4.6" for X-Virus-Checked, asked at most once an hour; "ClamAV" if clamd will not say. */
    const clamdName = async (signal: AbortSignal): Promise<string> => {
      if (version !== undefined && clock.now() - version.at < VERSION_TTL_MS) return version.text
      const text = await clamdVersion({ connect: net.connect, target, timeoutMs: Math.min(timeoutMs, 5000), signal })
        .then((v) => v.split('/')[0] ?? 'ClamAV')
        .catch(() => 'ClamAV')
      version = { text, at: clock.now() }
      return text
    }

    const dataPost: DataPostHook = async (ctx, msg) => {
      if (msg.size > options.max_size * 1024) {
        recorded.record('skipped')
        ctx.result('skip', `too large (${msg.size} > ${options.max_size * 1024} bytes)`)
        return pass()
      }
      if (!options.scan_all && !isMultipart(msg.headers.first('Content-Type'))) {
        recorded.record('skipped')
        ctx.result('skip', 'not multipart')
        return pass()
      }
      const started = performance.now()
      let verdict: ClamdVerdict
      try {
        verdict = await clamdScan(msg.stream(), { connect: net.connect, target, timeoutMs, signal: ctx.signal })
      } catch (e) {
        const ms = performance.now() - started
        recorded.record('failed', ms / 1000)
        if (!(e instanceof ScannerError)) throw e
        return failedCheck(ctx, policy, 'virus scanner', `${e.failure}: ${e.message} (${ms.toFixed(0)} ms)`)
      }
      const ms = performance.now() - started
      if (verdict.infected) {
        recorded.record('infected', ms / 1000)
        const found = verdict.names.join(', ')
        ctx.get(Naughty).push(`(${ctx.plugin}) virus ${found}`)
        adjustKarma(ctx, -1)
        ctx.result('fail', `virus ${found}, ${ms.toFixed(0)} ms`)
        if (options.deny_viruses) return reject({ code: 554, enhanced: '5.7.1', text: `Virus found: ${found}` })
        msg.headers.prepend('X-Virus-Found', 'Yes')
        msg.headers.prepend('X-Virus-Details', found)
        return pass()
      }
      recorded.record('clean', ms / 1000)
      ctx.result('pass', `clean, ${ms.toFixed(0)} ms`)
      msg.headers.prepend('X-Virus-Found', 'No')
      msg.headers.prepend('X-Virus-Checked', `by ${await clamdName(ctx.signal)} on ${ctx.server.me}`)
      return pass()
    }

    return { hooks: { dataPost } }
  },
})
