/**
 * mail/sender_permitted_from (qpsmtpd `sender_permitted_from`): SPF (RFC 7208) at MAIL, on
 * mailauth through the process's DNS service. The MAIL FROM identity is checked, or the HELO
 * identity for the null sender (§2.4); the HELO identity of other sessions is checked too and
 * reported, never refused on (qpsmtpd did not check it). qpsmtpd's `reject 0..6` levels
 * (spf-policy.ts), `spf_deny`, and the `spfbehavior` config file. The result goes into
 * Authentication-Results, a Received-SPF field (§9.1) and the SpfResult key for DMARC.
 * Relay clients, authenticated and whitelisted senders are not checked (qpsmtpd is_immune).
 * Security: DNS lookups are bounded (§4.6.4: 10 terms, 2 void lookups) and so is the time.
 */
import { isImmune } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHeadersHook, MailHook } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import { opt } from '../../host/options.ts'
import { defer, pass, reject } from '../../host/verdict.ts'
import { addAuthResult } from '../../mailauth/auth-results.ts'
import { checkSpf, type SpfCheck, SpfResult, spfAuthResult } from '../../mailauth/spf.ts'
import { type SpfLevel, spfDecision } from '../../mailauth/spf-policy.ts'

/** The HELO identity's check, once per HELO name of a connection. */
const HeloSpf = defineKey<{ readonly helo: string; readonly check: Promise<SpfCheck> } | undefined>(
  'mailauth/spf-helo',
  { scope: 'connection', initial: undefined },
)

/** A HELO name SPF can check: a domain with a dot, not an address literal (§2.3). */
const checkableHelo = (helo: string | undefined): helo is string =>
  helo !== undefined && /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+\.?$/.test(helo) && !/^[0-9.]+$/.test(helo)

/** `reject`, else qpsmtpd's older `spf_deny` (1 → 3, 2 → 4), else the `spfbehavior` file, else 1. */
function spfLevel(reject: string | undefined, spfDeny: string | undefined, behavior: string | undefined): SpfLevel {
  if (reject !== undefined) {
    if (!/^[0-6]$/.test(reject)) throw new Error(`reject: expected a level from 0 to 6, got "${reject}"`)
    return Number(reject) as SpfLevel
  }
  if (spfDeny !== undefined) {
    if (!/^[0-2]$/.test(spfDeny)) throw new Error(`spf_deny: expected 0, 1 or 2, got "${spfDeny}"`)
    if (spfDeny !== '0') return spfDeny === '1' ? 3 : 4
  }
  if (behavior !== undefined) {
    if (!/^[0-6]$/.test(behavior)) throw new Error(`spfbehavior: expected a level from 0 to 6, got "${behavior}"`)
    return Number(behavior) as SpfLevel
  }
  return 1
}

export default definePlugin({
  name: 'mail/sender_permitted_from',
  aliases: ['sender_permitted_from'],
  description: 'SPF (RFC 7208) for MAIL FROM and HELO, with qpsmtpd reject levels 0-6',
  options: {
    reject: opt.optionalString({
      description:
        '0-1 annotate, 2 defer on DNS errors and fail, 3 reject fail, 4 softfail, 5 neutral, 6 none/permerror',
    }),
    spf_deny: opt.optionalString({ description: 'older spelling: 1 is reject 3, 2 is reject 4' }),
    check_helo: opt.boolean({ default: true, description: 'also check and report the HELO identity' }),
    strict: opt.boolean({ default: false, description: "mailauth's strict RFC 7208 mode" }),
    timeout: opt.number({
      min: 1,
      max: 600,
      default: 20,
      description: 'seconds for one SPF evaluation (temperror past it)',
    }),
    loglevel: opt.loglevel(),
  },
  requires: ['dns'],
  timeoutMs: 30_000,
  setup(api) {
    const { options, config } = api
    const dns = api.dns
    const level = spfLevel(options.reject, options.spf_deny, config.value('spfbehavior'))
    const timeoutMs = options.timeout * 1000

    const mail: MailHook = async (ctx, from) => {
      if (isImmune(ctx)) {
        ctx.result('skip', 'immune')
        return pass()
      }
      const ip = ctx.connection.remote.ip
      const helo = ctx.connection.helo?.host
      const check = (sender: string | undefined) =>
        checkSpf({ dns, ip, sender, helo, me: ctx.server.me, signal: ctx.signal, timeoutMs, strict: options.strict })
      const address = from.address
      const sender = address === null || address.domain === undefined ? undefined : `${address.local}@${address.domain}`

      let heloCheck: Promise<SpfCheck> | undefined
      if (checkableHelo(helo) && (options.check_helo || sender === undefined)) {
        const cached = ctx.connection.notes.get(HeloSpf)
        heloCheck = cached?.helo === helo ? cached.check : check(undefined)
        ctx.connection.notes.set(HeloSpf, { helo, check: heloCheck })
      }
      const [mfrom, heloResult] = await Promise.all([sender === undefined ? undefined : check(sender), heloCheck])
      // A DNS failure is not remembered for the next MAIL of the connection.
      if (heloResult?.result === 'temperror') ctx.connection.notes.set(HeloSpf, undefined)
      const used = mfrom ?? heloResult
      if (mfrom !== undefined) addAuthResult(ctx, spfAuthResult(mfrom, mfrom.domain))
      if (heloResult !== undefined) addAuthResult(ctx, spfAuthResult(heloResult, helo ?? ''))
      if (used === undefined) {
        ctx.result('skip', 'null sender and no HELO name to check')
        return pass()
      }
      ctx.set(SpfResult, used)
      const decision = spfDecision(level, used)
      ctx.result(
        used.result === 'pass' ? 'pass' : decision.kind === 'pass' ? 'info' : 'fail',
        `${used.result} ${used.domain}`,
      )
      if (decision.kind === 'pass') return pass()
      const text = { code: decision.code, enhanced: decision.enhanced, text: decision.text }
      return decision.kind === 'reject' ? reject(text) : defer(text)
    }

    const dataPostHeaders: DataPostHeadersHook = (ctx, msg) => {
      const used = ctx.get(SpfResult)
      if (used !== undefined) msg.headers.prepend('Received-SPF', used.receivedSpf)
    }

    return { hooks: { mail, dataPostHeaders } }
  },
})
