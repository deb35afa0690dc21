/**
 * One message's row of a DMARC aggregate report (RFC 7489 §7.2 and appendix C; RFC 9990 keeps
 * the shape): what was published, what we evaluated, and the authentication results it rests
 * on. A report generator groups rows by policy domain and day and counts identical ones.
 */
import type { AuthResult } from './auth-results.ts'
import type { DmarcCheck } from './dmarc.ts'
import type { SpfCheck } from './spf.ts'

export interface DmarcReportRecord {
  readonly date: string
  readonly queueId: string
  readonly policyPublished: {
    readonly domain: string
    readonly adkim: string
    readonly aspf: string
    readonly p: string
    readonly sp: string
    readonly np: string | undefined
    readonly pct: number
    readonly testing: boolean
    readonly rua: string | undefined
  }
  readonly row: {
    readonly sourceIp: string
    readonly count: 1
    readonly policyEvaluated: {
      readonly disposition: string
      readonly dkim: 'pass' | 'fail'
      readonly spf: 'pass' | 'fail'
    }
  }
  readonly identifiers: { readonly headerFrom: string | undefined; readonly envelopeFrom: string | undefined }
  readonly authResults: {
    readonly dkim: readonly {
      readonly domain: string
      readonly selector: string | undefined
      readonly result: string
    }[]
    readonly spf: readonly { readonly domain: string; readonly scope: 'mfrom' | 'helo'; readonly result: string }[]
  }
}

export function dmarcReportRecord(
  check: DmarcCheck,
  ctx: {
    readonly sourceIp: string
    readonly envelopeFrom: string | undefined
    readonly spf: SpfCheck | undefined
    readonly dkim: readonly AuthResult[]
    readonly queueId: string
    readonly date: Date
  },
): DmarcReportRecord | undefined {
  const rec = check.record
  if (rec === undefined) return undefined
  const prop = (r: AuthResult, name: string) => r.properties.find((p) => p.type === 'header' && p.name === name)?.value
  return {
    date: ctx.date.toISOString(),
    queueId: ctx.queueId,
    policyPublished: {
      domain: rec.domain,
      adkim: rec.adkim,
      aspf: rec.aspf,
      p: rec.p,
      sp: rec.sp,
      np: rec.np,
      pct: rec.pct,
      testing: rec.testMode,
      rua: rec.rua,
    },
    row: {
      sourceIp: ctx.sourceIp,
      count: 1,
      policyEvaluated: {
        disposition: check.disposition,
        dkim: check.alignment.dkim === undefined ? 'fail' : 'pass',
        spf: check.alignment.spf === undefined ? 'fail' : 'pass',
      },
    },
    identifiers: { headerFrom: check.headerFrom, envelopeFrom: ctx.envelopeFrom },
    authResults: {
      dkim: ctx.dkim.map((r) => ({ domain: prop(r, 'd') ?? '', selector: prop(r, 's'), result: r.result })),
      spf:
        ctx.spf === undefined
          ? []
          : [{ domain: ctx.spf.domain, scope: ctx.spf.identity === 'helo' ? 'helo' : 'mfrom', result: ctx.spf.result }],
    },
  }
}
