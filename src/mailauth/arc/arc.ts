/**
 * ARC (RFC 8617) on mailauth, through our DNS service: validating the chain a message arrives
 * with (§5.2), and sealing it as it leaves (§5.1) with an ARC-Authentication-Results copied from
 * our Authentication-Results, so that the next hop can trust our SPF/DKIM/DMARC verdicts when a
 * forward breaks them. The validation's result is also kept for DMARC's local policy (RFC 8617
 * §7.2: a receiver may accept a DMARC failure when a sealer it trusts saw a pass).
 */
import type { Readable } from 'node:stream'
import type { ARCResult } from 'mailauth'
import { createSeal, arc as mailauthArc } from 'mailauth/lib/arc/index.js'
import type { DnsResolver } from '../../dns/types.ts'
import { defineKey } from '../../host/keys.ts'
import type { AuthResult } from '../auth-results.ts'
import type { SigningKey } from '../dkim/sign.ts'
import { verifierPass } from '../dkim/verifier.ts'

export interface ArcSealer {
  readonly instance: number
  /** `d=` and `s=` of the set's ARC-Seal. */
  readonly domain: string
  readonly selector: string
  readonly cv: string
  /** The set's ARC-Authentication-Results after `i=N;`: what that sealer saw. */
  readonly authResults: string
}

export interface ArcValidation {
  readonly result: 'none' | 'pass' | 'fail'
  /** The newest instance, 0 without a chain. */
  readonly instance: number
  readonly reason: string | undefined
  /** A fail because keys could not be looked up (timeout, SERVFAIL): asking later may pass. */
  readonly temporary: boolean
  /** The sets of a chain that passed, oldest first; empty otherwise (their claims count for nothing). */
  readonly sealers: readonly ArcSealer[]
}

/** The ARC validation of this message, for dmarc's local policy and the sealer's cv=. */
export const ArcValidated = defineKey<ArcValidation | undefined>('mailauth/arc', {
  scope: 'transaction',
  initial: undefined,
})

export interface ArcVerifyOptions {
  readonly dns: DnsResolver
  readonly signal?: AbortSignal | undefined
  readonly minRsaBits?: number | undefined
  readonly now?: Date | undefined
  /** mailauth's strict mode: RFC 8617's syntax to the letter (tag case, duplicate and unknown tags). */
  readonly strict?: boolean | undefined
}

type Tags = { readonly parsed?: Record<string, { readonly value?: unknown } | undefined> } | undefined

const text = (tags: Tags, name: string): string => {
  const v = tags?.parsed?.[name]?.value
  return v === undefined || v === null ? '' : String(v)
}

/**
 * Validates the message's ARC chain (RFC 8617 §5.2): the seals of every set, and the newest
 * ARC-Message-Signature.
 */
export async function verifyArc(input: Readable, opts: ArcVerifyOptions): Promise<ArcValidation> {
  const pass = await verifierPass(input, {
    dns: opts.dns,
    signal: opts.signal,
    verify: () => false,
    arc: true,
    minRsaBits: opts.minRsaBits ?? 1024,
    now: opts.now,
    strict: opts.strict,
  })
  const r: ARCResult = await mailauthArc(pass.arc as never, {
    resolver: pass.resolver as never,
    minBitLength: opts.minRsaBits ?? 1024,
    strict: opts.strict === true,
  })
  const result = r.status.result === 'pass' ? 'pass' : r.status.result === 'fail' ? 'fail' : 'none'
  const chain = (result === 'pass' && Array.isArray(r.chain) ? r.chain : []) as unknown as Record<string, unknown>[]
  const sealers = chain.map((set): ArcSealer => {
    const seal = set['arc-seal'] as Tags
    const aar = set['arc-authentication-results'] as
      | { readonly value?: unknown; readonly original?: unknown }
      | undefined
    return {
      instance: Number(set.i),
      domain: text(seal, 'd'),
      selector: text(seal, 's'),
      cv: text(seal, 'cv').toLowerCase(),
      authResults: aarPayload(aar),
    }
  })
  const comment = typeof r.status.comment === 'string' && r.status.comment !== '' ? r.status.comment : undefined
  const temporary = result === 'fail' && pass.temporaryFailures.length > 0
  const dnsFailure = `DNS failure: ${pass.temporaryFailures.join(', ')}`
  return {
    result,
    instance: typeof r.i === 'number' ? r.i : 0,
    reason: result === 'fail' ? (temporary ? dnsFailure : (comment ?? 'the chain did not validate')) : undefined,
    temporary,
    sealers,
  }
}

/** The text of an ARC-Authentication-Results after `i=N;`, unfolded. */
function aarPayload(aar: { readonly original?: unknown } | undefined): string {
  const original = aar?.original
  return (Buffer.isBuffer(original) ? original.toString() : typeof original === 'string' ? original : '')
    .replace(/^[^:]*:/, '')
    .replace(/\r?\n[ \t]+/g, ' ')
    .replace(/^\s*i\s*=\s*\d+\s*;\s*/, '')
    .trim()
}

/** `arc=pass (i=2)` with `smtp.remote-ip` (RFC 8617 §6 asks for it). */
export function arcAuthResult(v: ArcValidation, remoteIp: string | undefined): AuthResult {
  return {
    method: 'arc',
    result: v.result,
    reason: v.reason,
    comment: v.instance > 0 ? `i=${v.instance}` : undefined,
    properties: remoteIp === undefined ? [] : [{ type: 'smtp', name: 'remote-ip', value: remoteIp }],
  }
}

export interface SealOptions {
  /** An RSA key (RFC 8617 §4.1.3 names rsa-sha256 only), from readKeyring. */
  readonly key: SigningKey
  /** The chain's validation: a new set says what we found (cv=). */
  readonly validation: ArcValidation
  /** The ARC-Authentication-Results payload: our Authentication-Results value (`authserv-id; ...`). */
  readonly authResults: string
  readonly time?: Date | undefined
  /** Header fields the ARC-Message-Signature covers; mailauth's default list when absent. */
  readonly headerList?: string | undefined
}

export type SealOutcome =
  | { readonly sealed: true; readonly instance: number; readonly fields: readonly (readonly [string, string])[] }
  | { readonly sealed: false; readonly reason: string }

/**
 * A new ARC set for the message as it is now (RFC 8617 §5.1): the fields to put on top, in
 * order (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results). No set for a chain whose
 * newest seal already says cv=fail (§5.1.2), or one with 50 sets.
 */
export async function sealArc(input: Readable, opts: SealOptions): Promise<SealOutcome> {
  const cv = opts.validation.result
  const r = await createSeal(input, {
    seal: {
      signingDomain: opts.key.domain,
      selector: opts.key.selector,
      privateKey: opts.key.privateKey.export({ type: 'pkcs8', format: 'pem' }),
      algorithm: 'rsa-sha256',
      cv,
      authResults: opts.authResults,
      signTime: opts.time ?? new Date(),
      ...(opts.headerList === undefined ? {} : { headerList: opts.headerList }),
    },
  } as never)
  if (r.headers.length === 0)
    return { sealed: false, reason: r.errors.map((e) => e.err.message).join('; ') || 'not sealed' }
  const fields = r.headers.map((h): readonly [string, string] => {
    const colon = h.indexOf(':')
    return [h.slice(0, colon), h.slice(colon + 1).replace(/^ /, '')]
  })
  const instance = Number(/\bi=(\d+)/.exec(fields[0]?.[1] ?? '')?.[1] ?? 0)
  return { sealed: true, instance, fields }
}
