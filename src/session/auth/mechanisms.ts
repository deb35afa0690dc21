/**
 * Which SASL mechanisms a session offers, and who runs each: the EHLO AUTH keyword lists only
 * mechanisms some loaded backend can complete. The core runs PLAIN, LOGIN and CRAM-MD5 for the
 * password hooks, SCRAM for `authScram`, OAUTHBEARER and XOAUTH2 for `authToken`; a mechanism no
 * such hook covers goes to the `authSasl` backends that name it (Dovecot SASL).
 */
import type { SessionCore } from '../session-core.ts'
import { canBind } from './scram.ts'

/** How the core runs a mechanism: one of its own exchanges, or a backend's (`sasl`). */
export type Route =
  | 'PLAIN'
  | 'LOGIN'
  | 'CRAM-MD5'
  | 'SCRAM-SHA-256'
  | 'SCRAM-SHA-256-PLUS'
  | 'OAUTHBEARER'
  | 'XOAUTH2'
  | 'sasl'

export interface Mechanism {
  /** Upper case, as offered and as the client names it. */
  readonly name: string
  readonly route: Route
  /** For `sasl`: the plugin whose authSasl runs it (the first that named it). */
  readonly plugin?: string
}

/** The session's mechanisms in the order EHLO lists them. */
export function sessionMechanisms(s: SessionCore): Mechanism[] {
  const r = s.runner
  const password = r.has('auth') || r.has('authPassword')
  const out: Mechanism[] = []
  if (password || r.has('authPlain')) out.push({ name: 'PLAIN', route: 'PLAIN' })
  if (password || r.has('authLogin')) out.push({ name: 'LOGIN', route: 'LOGIN' })
  if (r.has('authCramMd5')) out.push({ name: 'CRAM-MD5', route: 'CRAM-MD5' })
  if (r.has('authScram')) {
    if (canBind(s)) out.push({ name: 'SCRAM-SHA-256-PLUS', route: 'SCRAM-SHA-256-PLUS' })
    out.push({ name: 'SCRAM-SHA-256', route: 'SCRAM-SHA-256' })
  }
  if (r.has('authToken')) {
    out.push({ name: 'OAUTHBEARER', route: 'OAUTHBEARER' })
    out.push({ name: 'XOAUTH2', route: 'XOAUTH2' })
  }
  if (r.has('authMechanisms')) {
    const own = new Set(out.map((m) => m.name))
    for (const { plugin, mechanisms } of r.saslMechanisms(s))
      for (const name of mechanisms) {
        if (own.has(name)) continue
        own.add(name)
        out.push({ name, route: 'sasl', plugin })
      }
  }
  return out
}
