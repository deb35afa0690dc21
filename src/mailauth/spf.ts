/**
 * SPF evaluation (RFC 7208 check_host()) on mailauth, through our DNS service: one function the
 * sender_permitted_from plugin and the RFC 7208 conformance suite both call. mailauth enforces
 * the lookup limits (§4.6.4: 10 terms that cause DNS queries, 2 void lookups: permerror past
 * them); we add a deadline for the whole evaluation (temperror past it) and the hook's signal.
 */
import { spf as mailauthSpf } from 'mailauth/lib/spf/index.js'
import type { DnsResolver } from '../dns/types.ts'
import { defineKey } from '../host/keys.ts'
import { type AuthResult, methodResults } from './auth-results.ts'
import { mailauthResolver } from './dns-adapter.ts'

export type SpfResultCode = (typeof methodResults.spf)[number]

export interface SpfCheck {
  readonly result: Exclude<SpfResultCode, 'policy'>
  /** Which identity was checked: MAIL FROM, or the HELO name (null sender, or the HELO check). */
  readonly identity: 'mailfrom' | 'helo'
  /** The domain whose policy was evaluated. */
  readonly domain: string
  /** mailauth's explanation for logs and the Received-SPF comment (`mx: domain of ... designates ...`). */
  readonly comment: string
  /** The domain owner's `exp=` text for a fail (RFC 7208 §6.2): third-party text. */
  readonly explanation: string | undefined
  /** The Received-SPF field's value (RFC 7208 §9.1), folded. */
  readonly receivedSpf: string
  /** DNS terms counted against the limit, and void lookups. */
  readonly lookups: { readonly count: number; readonly void: number } | undefined
}

export interface SpfCheckOptions {
  readonly dns: DnsResolver
  /** The client's address. */
  readonly ip: string
  /** The MAIL FROM address; undefined or '' for the null sender (then the HELO identity, §2.4). */
  readonly sender: string | undefined
  /** The HELO/EHLO name as the client gave it. */
  readonly helo: string | undefined
  /** Our host name, for the comment and the %{r} macro. */
  readonly me: string
  readonly signal?: AbortSignal | undefined
  /** Deadline for the whole evaluation in ms (§4.6.4 suggests at least 20 s); temperror past it. */
  readonly timeoutMs?: number | undefined
  /** §4.6.4 limits; the RFC's 10 and 2 unless an operator raises them. */
  readonly maxLookups?: number | undefined
  readonly maxVoidLookups?: number | undefined
  /** mailauth's strict mode: RFC 7208 to the letter instead of its lenient defaults. */
  readonly strict?: boolean | undefined
}

const spfResults = new Set<string>(methodResults.spf)

/** The HELO name as the `%{h}` macro and Received-SPF see it: an address in brackets. */
function heloForSpf(helo: string | undefined, ip: string): string {
  if (helo === undefined || helo === '') return `[${ip}]`
  return /^[0-9.]+$/.test(helo) || helo.includes(':') ? `[${helo.replace(/^\[|\]$/g, '')}]` : helo
}

/**
 * check_host() for the MAIL FROM identity, or the HELO identity when `sender` is empty.
 * @example const r = await checkSpf({ dns, ip: '192.0.2.1', sender: 'a@example.org', helo: 'mx.example.org', me: 'mx.test' })
 */
export async function checkSpf(opts: SpfCheckOptions): Promise<SpfCheck> {
  const sender = opts.sender === undefined || opts.sender === '' ? undefined : opts.sender
  const r = await mailauthSpf({
    ip: opts.ip,
    ...(sender === undefined ? {} : { sender }),
    helo: heloForSpf(opts.helo, opts.ip),
    mta: opts.me,
    resolver: mailauthResolver(opts.dns, { signal: opts.signal }) as never,
    ...(opts.timeoutMs === undefined ? {} : { maxElapsedTime: opts.timeoutMs }),
    ...(opts.maxLookups === undefined ? {} : { maxResolveCount: opts.maxLookups }),
    ...(opts.maxVoidLookups === undefined ? {} : { maxVoidCount: opts.maxVoidLookups }),
    strict: opts.strict === true,
  })
  const code = r.status.result
  const result = (spfResults.has(code) && code !== 'policy' ? code : 'temperror') as SpfCheck['result']
  const comment = typeof r.status.comment === 'string' ? r.status.comment : ''
  return {
    result,
    identity: sender === undefined ? 'helo' : 'mailfrom',
    domain: r.domain,
    comment,
    explanation: r.explanation,
    receivedSpf: r.header.replace(/^Received-SPF:\s*/i, ''),
    lookups: r.lookups === undefined ? undefined : { count: r.lookups.count, void: r.lookups.void },
  }
}

/** The check as an Authentication-Results entry: `spf=pass smtp.mailfrom=example.org` (RFC 8601 §2.7.2). */
export function spfAuthResult(check: SpfCheck, identity: string): AuthResult {
  return {
    method: 'spf',
    result: check.result,
    comment: check.comment,
    properties: [{ type: 'smtp', name: check.identity, value: identity }],
  }
}

/** The SPF check DMARC uses (RFC 7489 §4.1): MAIL FROM's, or the HELO name's for the null sender. */
export const SpfResult = defineKey<SpfCheck | undefined>('mailauth/spf', { scope: 'transaction', initial: undefined })
