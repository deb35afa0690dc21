/**
 * data/dmarc (qpsmtpd `dmarc`): DMARC (RFC 7489, DMARCbis RFC 9989) for the From domain, from
 * the SPF result of sender_permitted_from and the DKIM passes in Authentication-Results. It
 * evaluates in dataPostHeaders (so `dmarc=` is in the Authentication-Results header, which
 * qpsmtpd's data_post evaluation missed) and refuses in dataPost: disposition reject is 550
 * 5.7.1 (RFC 7489 §6.6.3 suggests it); quarantine is marked (policy.dmarc=quarantine, and the
 * DmarcResult key for a later plugin) or, with `quarantine reject`, refused as qpsmtpd did.
 * Relay clients are not checked; whitelisted senders are checked but never refused.
 * Aggregate-report data: one JSON line per message whose policy asks for reports (`rua`).
 */
import { appendFile } from 'node:fs/promises'
import { isImmune, rejectAs, rejectOptions } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHeadersHook, DataPostHook } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import { opt } from '../../host/options.ts'
import { defer, pass } from '../../host/verdict.ts'
import { addAuthResult, authResultsFor } from '../../mailauth/auth-results.ts'
import { checkDmarc, DmarcResult, dmarcAuthResult } from '../../mailauth/dmarc.ts'
import { dmarcReportRecord } from '../../mailauth/dmarc-report.ts'
import { SpfResult } from '../../mailauth/spf.ts'

/** Set when dataPostHeaders has run for the message: a missing result then means the check failed. */
const Checked = defineKey<'evaluated' | 'skipped' | undefined>('mailauth/dmarc-checked', {
  scope: 'transaction',
  initial: undefined,
})

export default definePlugin({
  name: 'data/dmarc',
  aliases: ['dmarc'],
  description: 'DMARC (RFC 7489/9989): report in Authentication-Results, refuse per the domain policy',
  options: {
    ...rejectOptions,
    quarantine: opt.enum(['mark', 'reject'], {
      default: 'mark',
      description: 'p=quarantine: accept and mark (policy.dmarc=quarantine), or refuse like p=reject',
    }),
    reporting: opt.boolean({ default: true, description: 'record aggregate-report data for domains that ask (rua)' }),
    report_file: opt.optionalString({ description: 'append report records here (JSON lines) instead of the log' }),
    strict: opt.boolean({ default: false, description: "mailauth's strict RFC 9989 mode" }),
  },
  requires: ['dns'],
  // Not dkim: `after` makes every plugin it names required, and DMARC works on SPF alone.
  after: ['sender_permitted_from'],
  timeoutMs: 30_000,
  setup(api) {
    const { options } = api
    const dns = api.dns
    const reportFile = options.report_file === undefined ? undefined : api.paths.resolve(options.report_file)

    const dataPostHeaders: DataPostHeadersHook = async (ctx, msg) => {
      if (ctx.connection.relayClient) {
        ctx.set(Checked, 'skipped')
        ctx.result('skip', 'relay client')
        return
      }
      const spf = ctx.get(SpfResult)
      const dkimPass = authResultsFor(ctx, 'dkim')
        .filter((r) => r.result === 'pass')
        .map((r) => ({
          domain: r.properties.find((p) => p.type === 'header' && p.name === 'd')?.value ?? '',
          selector: r.properties.find((p) => p.type === 'header' && p.name === 's')?.value,
        }))
        .filter((d) => d.domain !== '')
      const check = await checkDmarc({
        dns,
        from: msg.headers.get('From'),
        spfPass: spf?.result === 'pass' ? [spf.domain] : [],
        dkimPass,
        signal: ctx.signal,
        strict: options.strict,
      })
      ctx.set(DmarcResult, check)
      ctx.set(Checked, 'evaluated')
      addAuthResult(ctx, dmarcAuthResult(check))
      ctx.result(
        check.result === 'fail' ? 'fail' : check.result === 'temperror' ? 'error' : 'info',
        `${check.result} ${check.headerFrom ?? ''} dis=${check.disposition}${check.detail === undefined ? '' : ` (${check.detail})`}`,
      )
      if (!options.reporting || check.record?.rua === undefined) return
      const record = JSON.stringify(
        dmarcReportRecord(check, {
          sourceIp: ctx.connection.remote.ip,
          envelopeFrom: ctx.transaction.mailFrom.address?.domain,
          spf,
          dkim: authResultsFor(ctx, 'dkim'),
          queueId: ctx.transaction.id,
          date: new Date(),
        }),
      )
      if (reportFile === undefined) ctx.log.info(`dmarc report ${record}`)
      else await appendFile(reportFile, `${record}\n`, { mode: 0o640 })
    }

    const dataPost: DataPostHook = (ctx) => {
      const checked = ctx.get(Checked)
      if (checked === 'skipped') return pass()
      const check = ctx.get(DmarcResult)
      // dataPostHeaders failed (timed out, threw): its errors are only logged, so refuse here, for now.
      if (check === undefined)
        return defer({ code: 451, enhanced: '4.7.0', text: 'DMARC check failed, try again later' })
      const refuse =
        check.disposition === 'reject' || (check.disposition === 'quarantine' && options.quarantine === 'reject')
      if (!refuse) return pass()
      if (isImmune(ctx)) {
        ctx.result('skip', `immune, ${check.headerFrom ?? ''} would be refused`)
        return pass()
      }
      return rejectAs(ctx, options, `DMARC policy of ${check.headerFrom ?? 'the From domain'} refuses this message`, {
        perm: [550, '5.7.1'],
        temp: [451, '4.7.1'],
      })
    }

    return { hooks: { dataPostHeaders, dataPost } }
  },
})
