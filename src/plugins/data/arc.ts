/**
 * data/arc (`arc`; qpsmtpd has none): validates the ARC chain of incoming mail (RFC 8617 §5.2)
 * in dataPostHeaders, reports `arc=` in Authentication-Results and keeps the result for dmarc
 * (key ArcValidated); with `seal DOMAIN`, adds an ARC set to mail from other clients in
 * queuePre, the last hook that may change it, so that the mailbox behind this forwarder can
 * trust what we saw when forwarding breaks SPF and DKIM. ARC results never refuse mail (RFC
 * 8617 §7.2 leaves them to local policy). DNS trouble in validating is arc=fail with the
 * reason (ARC has no temperror) and the message is not sealed: a cv=fail set would end the
 * chain for every later hop over a failure that may be gone in a minute.
 */
import { isImmune } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHeadersHook, QueuePreHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import { ArcValidated, arcAuthResult, sealArc, verifyArc } from '../../mailauth/arc/arc.ts'
import { addAuthResult, authResultsOf, WrittenAuthResults } from '../../mailauth/auth-results.ts'
import { formatAuthResults } from '../../mailauth/auth-results-header.ts'
import { deadline } from '../../mailauth/deadline.ts'
import { readKeyring } from '../../mailauth/dkim/keys.ts'
import type { SigningKey } from '../../mailauth/dkim/sign.ts'

export default definePlugin({
  name: 'data/arc',
  aliases: ['arc'],
  description: 'ARC: validate the chain into Authentication-Results, seal forwarded mail',
  options: {
    seal: opt.optionalString({
      description: 'seal mail from other clients as this domain, with the key in arc_seal/<domain>/',
    }),
    key_dir: opt.optionalString({ description: 'sealing keys, <domain>/{selector,private}; default config/arc_seal' }),
    strict: opt.boolean({ default: false, description: "mailauth's strict RFC 8617 syntax" }),
    timeout: opt.number({ default: 20, min: 1, description: 'seconds for validating one chain (fail past it)' }),
    loglevel: opt.loglevel({
      description: "this plugin's log entries at level N, or N levels less (+N) or more (-N) severe",
    }),
  },
  requires: ['dns'],
  timeoutMs: 30_000,
  async setup(api) {
    const { options } = api
    const dns = api.dns
    const key = options.seal === undefined ? undefined : await sealingKey(api, options.seal, options.key_dir)
    if (key !== undefined) api.log.info(`sealing as ${key.domain} (s=${key.selector}, ${key.file})`)

    const dataPostHeaders: DataPostHeadersHook = async (ctx, msg) => {
      if (ctx.connection.relayClient) return
      const limit = deadline(ctx.signal, options.timeout * 1000)
      try {
        const validation = await verifyArc(msg.stream(), { dns, signal: limit.signal, strict: options.strict })
        ctx.set(ArcValidated, validation)
        addAuthResult(ctx, arcAuthResult(validation, ctx.connection.remote.ip))
        ctx.result(validation.result === 'fail' ? 'fail' : 'info', `arc=${validation.result} i=${validation.instance}`)
      } catch (e) {
        if (ctx.signal.aborted) throw e
        const reason = limit.expired ? `validation took longer than ${options.timeout} s` : (e as Error).message
        const failed = { result: 'fail', instance: 0, reason, temporary: true, sealers: [] } as const
        ctx.set(ArcValidated, failed)
        addAuthResult(ctx, arcAuthResult(failed, ctx.connection.remote.ip))
      } finally {
        limit.clear()
      }
    }

    const queuePre: QueuePreHook = async (ctx, msg) => {
      if (key === undefined || ctx.connection.relayClient || ctx.connection.auth !== undefined) return pass()
      const validation = ctx.get(ArcValidated)
      if (validation === undefined || validation.temporary) {
        // A cv=fail set would end the chain for every later hop; without ours, the chain up to
        // the previous sealer still stands.
        ctx.result('skip', `not sealed: the chain could not be validated (${validation?.reason ?? 'no result'})`)
        return pass()
      }
      const authResults = ctx.get(WrittenAuthResults) ?? formatAuthResults(api.server.me, authResultsOf(ctx))
      const outcome = await sealArc(msg.stream(), { key, validation, authResults })
      if (!outcome.sealed) {
        ctx.result('skip', `not sealed: ${outcome.reason}`)
        return pass()
      }
      for (const [name, value] of [...outcome.fields].reverse()) msg.headers.prepend(name, value)
      ctx.result(
        'pass',
        `sealed i=${outcome.instance} cv=${validation.result}${isImmune(ctx) ? ' (immune client)' : ''}`,
      )
      return pass()
    }

    return { hooks: { dataPostHeaders, queuePre } }
  },
})

async function sealingKey(
  api: { readonly config: { path(key: string): string | undefined }; readonly paths: { resolve(p: string): string } },
  domain: string,
  keyDir: string | undefined,
): Promise<SigningKey> {
  const dir = keyDir === undefined ? api.config.path('arc_seal') : api.paths.resolve(keyDir)
  if (dir === undefined) throw new Error('seal: no arc_seal directory (give key_dir)')
  const keys = (await readKeyring(dir)).keysFor(domain).filter((k) => k.algorithm === 'rsa-sha256')
  const found = keys[0]
  if (found === undefined)
    throw new Error(`seal ${domain}: no RSA key in ${dir}/${domain}/ (qtsmtpd dkim-keygen --arc ${domain} SELECTOR)`)
  return found
}
