/**
 * DKIM verification (RFC 6376 §6) of every signature of a message, up to a limit, each with its
 * own result as RFC 8601 §2.7.1 reports it. On mailauth (verifier.ts) in its lenient mode, with
 * what the RFCs require of a verifier on top:
 * - rsa-sha1 gets `policy` (RFC 8301 §3.1), RSA keys under 1024 bits `policy` (§3.2);
 * - a body hash that does not match is `fail` (RFC 6376 §6.1.3; mailauth says neutral);
 * - a signature that cannot be processed (unknown a= or c=, no d= or s=, h= too long) is
 *   `neutral` with the reason, not left out (RFC 8601 §2.7.1);
 * - body content after an `l=` limit is unsigned and could be anything (RFC 6376 §8.2): such a
 *   signature gets `policy` unless the operator accepts it.
 * Security: bounded work per message: at most `maxSignatures` signatures are verified, their
 * keys fetched in parallel, and an `h=` longer than `maxSignedFields` is not evaluated.
 */
import type { Readable } from 'node:stream'
import type { DKIMResult } from 'mailauth'
import type { DnsResolver } from '../../dns/types.ts'
import type { AuthProperty, AuthResult } from '../auth-results.ts'
import { type SignatureTags, tagValue, verifierPass } from './verifier.ts'

export type DkimResultCode = 'pass' | 'fail' | 'neutral' | 'policy' | 'temperror' | 'permerror'

export interface DkimSignatureResult {
  readonly result: DkimResultCode
  /** `d=`, `s=`, `i=` (the AUID: `@d=` when absent), `a=` and `b=` as the signature has them. */
  readonly domain: string
  readonly selector: string
  readonly identity: string
  readonly algorithm: string
  readonly signature: string
  /** Why it is not a pass, for a human (RFC 8601 `reason`). */
  readonly reason: string | undefined
  /** The key record has `t=y`: the domain is testing, treat the mail as unsigned (RFC 6376 §3.6.1). */
  readonly testing: boolean
  /** Body octets after the `l=` limit, which the signature does not cover. */
  readonly unsignedBodyOctets: number
}

export interface DkimVerification {
  /** One per DKIM-Signature verified, in header order; empty for an unsigned message. */
  readonly signatures: readonly DkimSignatureResult[]
  /** DKIM-Signature fields beyond maxSignatures, not verified. */
  readonly notVerified: number
}

export interface DkimVerifyOptions {
  readonly dns: DnsResolver
  readonly signal?: AbortSignal | undefined
  /** Signatures verified per message; the rest are counted in `notVerified` (RFC 6376 §6.1 allows a limit). */
  readonly maxSignatures: number
  /** A signature whose h= names more fields than this is neutral, not evaluated. */
  readonly maxSignedFields: number
  /** RSA keys shorter than this get `policy`; RFC 8301 §3.2 says 1024. */
  readonly minRsaBits?: number | undefined
  /** Unsigned body content after `l=`: `policy` (the default) or `pass` as RFC 6376 allows. */
  readonly unsignedBody?: 'policy' | 'pass' | undefined
  readonly now?: Date | undefined
}

interface Picked {
  readonly tags: SignatureTags
  /** Our own verdict without asking mailauth (h= too long). */
  readonly early?: string
}

/**
 * @example
 *   const v = await verifyDkim(msg.stream(), { dns, signal: ctx.signal, maxSignatures: 5, maxSignedFields: 500 })
 *   for (const s of v.signatures) addAuthResult(ctx, dkimAuthResult(s))
 */
export async function verifyDkim(input: Readable, opts: DkimVerifyOptions): Promise<DkimVerification> {
  const picked: Picked[] = []
  let notVerified = 0
  const pass = await verifierPass(input, {
    dns: opts.dns,
    signal: opts.signal,
    arc: false,
    minRsaBits: opts.minRsaBits ?? 1024,
    now: opts.now,
    verify(index, tags) {
      if (index >= opts.maxSignatures) {
        notVerified++
        return false
      }
      const fields = tagValue(tags, 'h').split(':').length
      if (fields > opts.maxSignedFields) {
        picked.push({ tags, early: `h= names ${fields} fields, more than the ${opts.maxSignedFields} verified` })
        return false
      }
      picked.push({ tags })
      return true
    },
  })
  // mailauth's results carry the b= value of their signature; match them in order.
  const bySignature = new Map<string, DKIMResult[]>()
  for (const r of pass.results) {
    if (r.signature === undefined) continue
    const list = bySignature.get(r.signature) ?? []
    list.push(r)
    bySignature.set(r.signature, list)
  }
  const signatures = picked.map((p): DkimSignatureResult => {
    const found = p.early === undefined ? bySignature.get(tagValue(p.tags, 'b'))?.shift() : undefined
    if (found === undefined) return describe(p.tags, 'neutral', p.early ?? unprocessable(p.tags))
    return fromMailauth(p.tags, found, opts.unsignedBody ?? 'policy', opts.minRsaBits ?? 1024)
  })
  return { signatures, notVerified }
}

function describe(tags: SignatureTags, result: DkimResultCode, reason: string | undefined): DkimSignatureResult {
  const domain = tagValue(tags, 'd')
  return {
    result,
    domain,
    selector: tagValue(tags, 's'),
    identity: tagValue(tags, 'i') || (domain === '' ? '' : `@${domain}`),
    algorithm: tagValue(tags, 'a'),
    signature: tagValue(tags, 'b').replace(/\s+/g, ''),
    reason,
    testing: false,
    unsignedBodyOctets: 0,
  }
}

/** Why mailauth's lenient mode left a signature out (the checks of its prepareSignature, in order). */
function unprocessable(tags: SignatureTags): string {
  if (!/^(?:rsa-sha256|ed25519-sha256|rsa-sha1)$/i.test(tagValue(tags, 'a'))) return 'unknown algorithm'
  const [header, body = 'simple'] = (tagValue(tags, 'c') || 'simple').toLowerCase().split('/')
  if (![header, body].every((c) => c === 'simple' || c === 'relaxed')) return 'unknown canonicalization'
  if (tagValue(tags, 'd') === '' || tagValue(tags, 's') === '') return 'signature missing required tag'
  return 'signature could not be processed'
}

const resultCodes = new Set<string>(['pass', 'fail', 'neutral', 'policy', 'temperror', 'permerror'])

function fromMailauth(
  tags: SignatureTags,
  r: DKIMResult,
  unsignedBody: 'policy' | 'pass',
  minRsaBits: number,
): DkimSignatureResult {
  const status = r.status
  const comment = typeof status.comment === 'string' && status.comment !== '' ? status.comment : undefined
  let result: DkimResultCode = resultCodes.has(status.result) ? (status.result as DkimResultCode) : 'permerror'
  let reason = comment
  if (result === 'neutral' && comment === 'body hash did not verify') result = 'fail'
  if (result === 'policy' && status.policy?.['dkim-rules'] === 'weak-key')
    reason = `RSA key shorter than ${minRsaBits} bits`
  if (result === 'policy' && status.policy?.['dkim-rules'] === 'weak-algorithm') reason = 'rsa-sha1 (RFC 8301)'
  const unsigned = status.underSized ?? 0
  if (result === 'pass' && unsigned > 0 && unsignedBody === 'policy') {
    result = 'policy'
    reason = `${unsigned} body octets after l= are not signed`
  }
  return {
    ...describe(tags, result, result === 'pass' ? undefined : reason),
    testing: status.testing === true,
    unsignedBodyOctets: unsigned,
  }
}

/** RFC 6008 §4: enough of b= to tell the signatures apart, at least 8 characters. */
export function shortSignatures(signatures: readonly string[]): string[] {
  return signatures.map((b) => {
    for (let n = 8; n < b.length; n++) {
      const prefix = b.slice(0, n)
      if (signatures.every((other) => other === b || !other.startsWith(prefix))) return prefix
    }
    return b
  })
}

/**
 * The Authentication-Results entries: one per signature (`dkim=pass header.d=example.org
 * header.i=@example.org header.s=sel header.a=rsa-sha256 header.b=abcdEFGH`), `dkim=none` for a
 * message without signatures, and one `neutral` saying how many were not verified.
 */
export function dkimAuthResults(v: DkimVerification, limit: number): AuthResult[] {
  if (v.signatures.length === 0 && v.notVerified === 0) return [{ method: 'dkim', result: 'none', properties: [] }]
  const short = shortSignatures(v.signatures.map((s) => s.signature))
  const results: AuthResult[] = v.signatures.map((s, i) => {
    const properties: AuthProperty[] = []
    const add = (name: string, value: string) => {
      if (value !== '') properties.push({ type: 'header', name, value })
    }
    add('d', s.domain)
    add('i', s.identity)
    add('s', s.selector)
    add('a', s.algorithm)
    add('b', short[i] ?? '')
    return {
      method: 'dkim',
      result: s.result,
      reason: s.reason,
      comment: s.testing ? 'key in testing mode (t=y)' : undefined,
      properties,
    }
  })
  if (v.notVerified > 0)
    results.push({
      method: 'dkim',
      result: 'neutral',
      reason: `${v.notVerified} more signatures not verified (at most ${limit} per message)`,
      properties: [],
    })
  return results
}
