/**
 * The iprev method of Authentication-Results (RFC 8601 §3): the forward-confirmed reverse DNS
 * result of the client, as the fcrdns plugin computes it (src/plugins/connect/fcrdns.ts), with
 * RFC 8601 §2.7.3's results: pass; fail (names found, none resolving back); permerror (no PTR
 * published); temperror (DNS trouble).
 */
import type { AuthResult } from './auth-results.ts'

export interface IprevCheck {
  readonly result: 'pass' | 'fail' | 'temperror' | 'permerror'
  readonly ip: string
  /** The verified name (pass), or the PTR names found. */
  readonly names: readonly string[]
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
