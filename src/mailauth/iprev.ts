/**
 * iprev (RFC 8601 §3, forward-confirmed reverse DNS): the client's address has a PTR name whose
 * A or AAAA records include the address. Results as RFC 8601 §2.7.3 defines them: pass; fail
 * (names found, none resolving back); permerror (no PTR published); temperror (DNS trouble).
 * At most MAX_NAMES PTR names are tried (RFC 8601 §3 lets a verifier bound them), in parallel.
 */
import type { DnsResolver } from '../dns/types.ts'
import { normalizeIp, parseIp, reverseName } from '../net/ip.ts'
import type { AuthResult } from './auth-results.ts'

const MAX_NAMES = 10

export interface IprevCheck {
  readonly result: 'pass' | 'fail' | 'temperror' | 'permerror'
  readonly ip: string
  /** The verified name (pass), or the PTR names found. */
  readonly names: readonly string[]
}

export async function checkIprev(dns: DnsResolver, ipText: string, signal?: AbortSignal): Promise<IprevCheck> {
  const ip = normalizeIp(ipText) ?? ipText
  const parsed = parseIp(ip)
  const ptrName = parsed === undefined ? undefined : reverseName(parsed)
  if (parsed === undefined || ptrName === undefined) return { result: 'permerror', ip, names: [] }
  const ptr = await dns.query(ptrName, 'PTR', { signal })
  if (ptr.kind === 'timeout' || ptr.kind === 'servfail') return { result: 'temperror', ip, names: [] }
  if (ptr.kind !== 'records') return { result: 'permerror', ip, names: [] }
  const names = [...new Set(ptr.records.map((n) => n.replace(/\.$/, '').toLowerCase()))].slice(0, MAX_NAMES)
  const type = parsed.family === 4 ? 'A' : 'AAAA'
  const forward = await Promise.all(names.map((n) => dns.query(n, type, { signal })))
  const confirmed = names.find((_, i) => {
    const a = forward[i]
    return a?.kind === 'records' && a.records.some((r) => normalizeIp(r) === ip)
  })
  if (confirmed !== undefined) return { result: 'pass', ip, names: [confirmed] }
  // A name we could not resolve might have confirmed: that is temporary, not a fail.
  if (forward.some((a) => a.kind === 'timeout' || a.kind === 'servfail')) return { result: 'temperror', ip, names }
  return { result: 'fail', ip, names }
}

/** `iprev=pass (mail.example.org) policy.iprev=192.0.2.1` */
export function iprevAuthResult(check: IprevCheck): AuthResult {
  return {
    method: 'iprev',
    result: check.result,
    comment: check.names.length === 0 ? undefined : check.names.join(' '),
    properties: [{ type: 'policy', name: 'iprev', value: check.ip }],
  }
}
