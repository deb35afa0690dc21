/**
 * DMARC evaluation on mailauth 7.1, through our DNS service: policy discovery and the
 * organisational domain by the DNS tree walk of DMARCbis (RFC 9989 §4.10, which replaced RFC
 * 7489's public suffix list), alignment relaxed or strict, `sp`/`np`, `t=y`; and RFC 7489's
 * `pct` (§6.6.4), which DMARCbis dropped but records still carry: a failing message outside
 * the sample gets the next weaker policy. The result is what the dmarc plugin reports, refuses
 * on, and records for aggregate reports (RFC 7489 §7.2, appendix C).
 */
import { dmarc as mailauthDmarc } from 'mailauth/lib/dmarc/index.js'
import addressparser from 'nodemailer/lib/addressparser'
import type { DnsResolver } from '../dns/types.ts'
import { defineKey } from '../host/keys.ts'
import type { AuthResult } from './auth-results.ts'
import { mailauthResolver } from './dns-adapter.ts'

export type DmarcPolicy = 'none' | 'quarantine' | 'reject'
export type DmarcResultCode = 'pass' | 'fail' | 'none' | 'temperror' | 'permerror'

export interface DmarcCheck {
  readonly result: DmarcResultCode
  /** The From domain (RFC5322.From), when there is exactly one. */
  readonly headerFrom: string | undefined
  /** Why there is no result, e.g. `multiple-from-fields`, `no-author-domain`, `DNS error`. */
  readonly reason: string | undefined
  /** More about a temperror, for the log. */
  readonly detail?: string | undefined
  /** The published record applied, when one was found. */
  readonly record:
    | {
        readonly domain: string
        readonly orgDomain: string
        readonly p: DmarcPolicy
        readonly sp: DmarcPolicy
        readonly np: DmarcPolicy | undefined
        readonly adkim: 'r' | 's'
        readonly aspf: 'r' | 's'
        readonly pct: number
        readonly testMode: boolean
        readonly rua: string | undefined
      }
    | undefined
  /** The policy for this message after sp/np and t=y. */
  readonly policy: DmarcPolicy
  /** What to do with a failing message after pct sampling; 'none' for every message that did not fail. */
  readonly disposition: DmarcPolicy
  /** The aligned identifiers, if any. */
  readonly alignment: { readonly spf: string | undefined; readonly dkim: string | undefined }
}

export interface DkimPass {
  readonly domain: string
  readonly selector?: string | undefined
}

export interface DmarcCheckOptions {
  readonly dns: DnsResolver
  /** The values of every From field. */
  readonly from: readonly string[]
  /** Domains with an SPF pass for DMARC: MAIL FROM's, or HELO's for the null sender. */
  readonly spfPass: readonly string[]
  /** Signing domains of the DKIM signatures that verified. */
  readonly dkimPass: readonly DkimPass[]
  readonly signal?: AbortSignal | undefined
  /** For pct sampling: a number in [0, 1). */
  readonly random?: () => number
  readonly strict?: boolean | undefined
}

const policies = new Set<string>(['none', 'quarantine', 'reject'])
const asPolicy = (v: unknown, fallback: DmarcPolicy): DmarcPolicy =>
  typeof v === 'string' && policies.has(v) ? (v as DmarcPolicy) : fallback
const weaker: Record<DmarcPolicy, DmarcPolicy> = { reject: 'quarantine', quarantine: 'none', none: 'none' }

/** Mailboxes of the From fields (groups included, RFC 6854). */
export function fromAddresses(fields: readonly string[]): string[] {
  return fields.flatMap((f) =>
    addressparser(f)
      .flatMap((a) => ('group' in a ? (a.group ?? []).map((m) => m.address) : [a.address]))
      .filter((a): a is string => typeof a === 'string' && a !== ''),
  )
}

/** The tags of a DMARC record (RFC 7489 §6.3), for what mailauth does not return (pct, rua). */
function recordTags(rr: string): Map<string, string> {
  const tags = new Map<string, string>()
  for (const part of rr.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0) tags.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim())
  }
  return tags
}

/**
 * @example const r = await checkDmarc({ dns, from: ['a@example.org'], spfPass: ['example.org'], dkimPass: [] })
 */
export async function checkDmarc(opts: DmarcCheckOptions): Promise<DmarcCheck> {
  const headerFrom = fromAddresses(opts.from)
  const r = await mailauthDmarc({
    headerFrom,
    fromFields: opts.from.length,
    spfDomains: [...opts.spfPass],
    dkimDomains: opts.dkimPass.map((d) => ({ domain: d.domain })),
    resolver: mailauthResolver(opts.dns, { signal: opts.signal }) as never,
    strict: opts.strict === true,
  })
  const none = {
    record: undefined,
    policy: 'none',
    disposition: 'none',
    alignment: { spf: undefined, dkim: undefined },
  } as const
  if (r === false) {
    const reason =
      opts.from.length > 1
        ? 'multiple-from-fields'
        : headerFrom.length === 0
          ? 'no-author-domain'
          : 'multiple-author-domains'
    return { result: 'permerror', headerFrom: undefined, reason, ...none }
  }
  const from = r.status.header?.from
  const result = r.status.result as DmarcResultCode
  // The DNS error's detail (which server refused) is for the log, not for a header the recipients see.
  if (result === 'temperror') return { result, headerFrom: from, reason: 'DNS error', detail: r.error, ...none }
  if (r.rr === undefined || result === 'none') return { result: 'none', headerFrom: from, reason: undefined, ...none }
  const tags = recordTags(r.rr)
  const pctTag = Number.parseInt(tags.get('pct') ?? '100', 10)
  const pct = Number.isFinite(pctTag) ? Math.min(100, Math.max(0, pctTag)) : 100
  const p = asPolicy(r.p, 'none')
  const policy = asPolicy(r.policy, p)
  let disposition: DmarcPolicy = 'none'
  if (result === 'fail') {
    // RFC 7489 §6.6.4; with t=y mailauth has already weakened the policy (RFC 9989), so pct does not apply twice.
    const sampled = r.testMode || pct >= 100 || (opts.random ?? Math.random)() * 100 < pct
    disposition = sampled ? policy : weaker[policy]
  }
  return {
    result,
    headerFrom: from,
    reason: undefined,
    record: {
      domain: r.policyDomain ?? r.domain,
      orgDomain: r.domain,
      p,
      sp: asPolicy(r.sp, p),
      np: r.np === undefined ? undefined : asPolicy(r.np, p),
      adkim: r.alignment.dkim.strict ? 's' : 'r',
      aspf: r.alignment.spf.strict ? 's' : 'r',
      pct,
      testMode: r.testMode,
      rua: tags.get('rua'),
    },
    policy,
    disposition,
    alignment: { spf: r.alignment.spf.result, dkim: r.alignment.dkim.result },
  }
}

/** `dmarc=fail (p=REJECT sp=NONE dis=REJECT) header.from=example.org policy.dmarc=reject` */
export function dmarcAuthResult(check: DmarcCheck): AuthResult {
  const rec = check.record
  const comment =
    rec === undefined
      ? check.reason
      : [`p=${rec.p.toUpperCase()}`, `sp=${rec.sp.toUpperCase()}`, `dis=${check.disposition.toUpperCase()}`].join(' ')
  return {
    method: 'dmarc',
    result: check.result,
    comment,
    properties: [
      ...(check.headerFrom === undefined ? [] : [{ type: 'header' as const, name: 'from', value: check.headerFrom }]),
      ...(rec === undefined ? [] : [{ type: 'policy' as const, name: 'dmarc', value: check.disposition }]),
    ],
  }
}

/** The message's DMARC check, for the dmarc plugin's dataPost and later plugins (a quarantine router). */
export const DmarcResult = defineKey<DmarcCheck | undefined>('mailauth/dmarc', {
  scope: 'transaction',
  initial: undefined,
})
