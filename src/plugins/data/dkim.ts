/**
 * data/dkim (qpsmtpd `dkim`): verifies every DKIM signature of incoming mail (RFC 6376, RSA and
 * Ed25519, RFC 8301 and 8463) in dataPostHeaders, so that each one's result is in
 * Authentication-Results and dmarc sees the passes; refuses in dataPost only with `reject 1`
 * (a failed signature alone is no reason to refuse, RFC 6376 §6.3). Signs mail from relay
 * clients and authenticated users in queuePre, the last hook that may change the message, with
 * the keys of `config/dkim/<domain>/` (relaxed/relaxed, over-signed, RSA and Ed25519 side by
 * side). DNS trouble is temperror: at most a 451 with `reject 1`, never a 5xx.
 */
import { adjustKarma, isImmune, rejectAs, rejectTypes } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHeadersHook, DataPostHook, QueuePreHook } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import type { Message } from '../../host/message.ts'
import { opt } from '../../host/options.ts'
import { defer, pass } from '../../host/verdict.ts'
import { addAuthResult } from '../../mailauth/auth-results.ts'
import { deadline } from '../../mailauth/deadline.ts'
import { relaxedBodyHash } from '../../mailauth/dkim/canonical.ts'
import { type DkimKeyring, readKeyring } from '../../mailauth/dkim/keys.ts'
import { dkimSignature, type SigningKey } from '../../mailauth/dkim/sign.ts'
import { type DkimVerification, dkimAuthResults, verifyDkim } from '../../mailauth/dkim/verify.ts'
import { fromAddresses } from '../../mailauth/dmarc.ts'

/** The verification of this message, for plugins after dkim (undefined: not verified, or it failed). */
export const DkimVerified = defineKey<DkimVerification | undefined>('mailauth/dkim', {
  scope: 'transaction',
  initial: undefined,
})
/** Set for mail that is not verified (relay clients'), so that dataPost does not take it for a broken check. */
const NotVerified = defineKey<boolean>('mailauth/dkim-not-verified', { scope: 'transaction', initial: false })

export default definePlugin({
  name: 'data/dkim',
  aliases: ['dkim'],
  description: 'DKIM: verify every signature into Authentication-Results, sign mail from relay clients',
  options: {
    reject: opt.enum(['0', '1', 'naughty'], {
      default: '0',
      description:
        '1 refuses mail whose signatures all fail (temperror: 451), naughty defers to naughty; 0 reports only',
    }),
    reject_type: opt.enum(rejectTypes, { default: 'perm', description: 'how a refusal is sent' }),
    loglevel: opt.loglevel({
      description: "this plugin's log entries at level N, or N levels less (+N) or more (-N) severe",
    }),
    max_signatures: opt.number({
      default: 5,
      min: 0,
      max: 50,
      integer: true,
      description: 'signatures verified per message; the rest are reported neutral',
    }),
    max_signed_fields: opt.number({
      default: 500,
      min: 1,
      integer: true,
      description: 'a signature whose h= names more header fields is neutral, not evaluated',
    }),
    unsigned_body: opt.enum(['policy', 'pass'], {
      default: 'policy',
      description: 'a signature that leaves body content after its l= length unsigned: policy, or pass',
    }),
    timeout: opt.number({ default: 20, min: 1, description: 'seconds for verifying one message (temperror past it)' }),
    key_dir: opt.optionalString({ description: 'signing keys, <domain>/{selector,private}; default config/dkim' }),
  },
  requires: ['dns'],
  timeoutMs: 30_000,
  async setup(api) {
    const { options, log } = api
    const dns = api.dns
    const keyDir = options.key_dir === undefined ? api.config.path('dkim') : api.paths.resolve(options.key_dir)
    const keyring: DkimKeyring | undefined = keyDir === undefined ? undefined : await readKeyring(keyDir)
    if (keyring !== undefined && keyring.domains.length > 0)
      log.info(`signing for ${keyring.domains.join(', ')} with the keys in ${keyDir}`)

    const dataPostHeaders: DataPostHeadersHook = async (ctx, msg) => {
      if (ctx.connection.relayClient) {
        ctx.set(NotVerified, true)
        return
      }
      const limit = deadline(ctx.signal, options.timeout * 1000)
      let verification: DkimVerification
      try {
        verification = await verifyDkim(msg.stream(), {
          dns,
          signal: limit.signal,
          maxSignatures: options.max_signatures,
          maxSignedFields: options.max_signed_fields,
          unsignedBody: options.unsigned_body,
        })
      } catch (e) {
        if (ctx.signal.aborted) throw e
        const why = limit.expired ? `verification took longer than ${options.timeout} s` : (e as Error).message
        ctx.log.warn(`dkim: ${why}`)
        addAuthResult(ctx, { method: 'dkim', result: 'temperror', reason: why, properties: [] })
        return
      } finally {
        limit.clear()
      }
      ctx.set(DkimVerified, verification)
      for (const r of dkimAuthResults(verification, options.max_signatures)) addAuthResult(ctx, r)
      const summary = verification.signatures.map((s) => `${s.result} ${s.domain || '?'}`).join(', ') || 'none'
      ctx.result(verification.signatures.some((s) => s.result === 'fail') ? 'fail' : 'info', summary)
    }

    const dataPost: DataPostHook = (ctx) => {
      if (ctx.get(NotVerified)) return pass()
      // Without a verification (it broke or timed out), overall() says temperror.
      const verdict = overall(ctx.get(DkimVerified))
      if (verdict === 'fail') adjustKarma(ctx, -1)
      if (options.reject === '0' || verdict === 'pass' || verdict === 'other' || isImmune(ctx)) return pass()
      if (verdict === 'temperror')
        return options.reject === '1'
          ? defer({ code: 451, enhanced: '4.7.5', text: 'DKIM keys could not be looked up, try again later' })
          : pass('temperror')
      return rejectAs(ctx, options, 'DKIM signature verification failed', {
        perm: [550, '5.7.20'],
        temp: [451, '4.7.20'],
      })
    }

    const queuePre: QueuePreHook = async (ctx, msg) => {
      if (keyring === undefined || !(ctx.connection.relayClient || ctx.connection.auth !== undefined)) return pass()
      if (msg.headers.count('From') === 0) {
        // RFC 6376 §5.4: the From field must be signed; a message without one cannot be.
        ctx.result('skip', 'not signed: no From field')
        return pass()
      }
      const keys = signingKeys(keyring, msg, ctx.transaction.mailFrom.address?.domain)
      if (keys.length === 0) {
        ctx.result(
          'skip',
          `no key for ${signingDomains(msg, ctx.transaction.mailFrom.address?.domain).join(', ') || 'an empty From'}`,
        )
        return pass()
      }
      const bodyHash = await relaxedBodyHash(msg.bodyStream())
      const fields = msg.headers.fields
      const time = new Date()
      // Computed before adding any: each signature covers the message as the others do.
      const values = keys.map((k) => dkimSignature(fields, bodyHash, k, { time }))
      for (const v of values.reverse()) msg.headers.prepend('DKIM-Signature', v)
      ctx.result('pass', `signed as ${keys.map((k) => `${k.domain} (${k.selector}, ${k.algorithm})`).join(', ')}`)
      return pass()
    }

    return { hooks: { dataPostHeaders, dataPost, queuePre } }
  },
})

/** The message's DKIM verdict for refusing: a pass (not in t=y testing) wins, then fail, then temperror. */
function overall(v: DkimVerification | undefined): 'pass' | 'fail' | 'temperror' | 'other' {
  if (v === undefined) return 'temperror'
  const counted = v.signatures.filter((s) => !s.testing)
  if (counted.some((s) => s.result === 'pass')) return 'pass'
  if (counted.some((s) => s.result === 'fail')) return 'fail'
  if (counted.some((s) => s.result === 'temperror')) return 'temperror'
  return 'other'
}

/** The From domain first (DMARC alignment, RFC 7489 §3.1.1), then the envelope sender's (qpsmtpd's choice). */
function signingDomains(msg: Message, envelopeDomain: string | undefined): string[] {
  const from = fromAddresses(msg.headers.get('From'))
  const fromDomain = from.length === 1 ? from[0]?.split('@').pop() : undefined
  return [...new Set([fromDomain, envelopeDomain].filter((d): d is string => d !== undefined && d !== ''))].map((d) =>
    d.toLowerCase(),
  )
}

function signingKeys(keyring: DkimKeyring, msg: Message, envelopeDomain: string | undefined): readonly SigningKey[] {
  for (const domain of signingDomains(msg, envelopeDomain)) {
    const keys = keyring.keysFor(domain)
    if (keys.length > 0) return keys
  }
  return []
}
