/**
 * data/domainkeys (qpsmtpd `domainkeys`): loads under qpsmtpd's name with its arguments, and
 * reports a DomainKey-Signature as `domainkeys=neutral` with the reason in
 * Authentication-Results, without verifying it. DomainKeys (RFC 4870) has been historic since
 * DKIM replaced it in 2007, no maintained JavaScript implementation exists, and it signs with
 * rsa-sha1 only, which RFC 8301 §3.1 forbids verifiers to accept for DKIM: a DomainKeys `pass`
 * would vouch for a hash that is no longer trusted. Unsigned mail gets no entry (qpsmtpd
 * skipped it too). Nothing is refused, whatever `reject` says: nothing fails.
 */
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHeadersHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { type AuthProperty, addAuthResult } from '../../mailauth/auth-results.ts'

export const notVerified = 'DomainKeys (RFC 4870) is historic; its rsa-sha1 signatures are not verified'

/** The d= of a DomainKey-Signature value (RFC 4870 §3.3 tag=value list). */
function signingDomain(value: string): string | undefined {
  for (const tag of value.split(';')) {
    const m = /^\s*d\s*=\s*([A-Za-z0-9.-]+)\s*$/.exec(tag)
    if (m !== null) return m[1]?.toLowerCase()
  }
  return undefined
}

export default definePlugin({
  name: 'data/domainkeys',
  aliases: ['domainkeys'],
  description: 'DomainKeys: reported as domainkeys=neutral (historic, rsa-sha1), never refused',
  options: {
    reject: opt.enum(['0', '1', 'naughty'], {
      default: '1',
      description: "qpsmtpd's argument, accepted: nothing is refused, as no signature fails",
    }),
    reject_type: opt.enum(['perm', 'temp', 'disconnect', 'temp_disconnect', 'hard', 'soft'], {
      default: 'perm',
      description: "qpsmtpd's argument, accepted",
    }),
    warn_only: opt.boolean({ default: false, description: "qpsmtpd's deprecated argument, accepted" }),
    loglevel: opt.loglevel({
      description: "this plugin's log entries at level N, or N levels less (+N) or more (-N) severe",
    }),
  },
  timeoutMs: 5_000,
  setup() {
    const dataPostHeaders: DataPostHeadersHook = (ctx, msg) => {
      const signatures = msg.headers.get('DomainKey-Signature')
      if (signatures.length === 0) return
      for (const value of signatures) {
        const domain = signingDomain(value)
        const properties: AuthProperty[] = domain === undefined ? [] : [{ type: 'header', name: 'd', value: domain }]
        addAuthResult(ctx, { method: 'domainkeys', result: 'neutral', reason: notVerified, properties })
      }
      ctx.result('skip', `${signatures.length} DomainKeys signature(s) not verified (historic)`)
    }
    return { hooks: { dataPostHeaders } }
  },
})
