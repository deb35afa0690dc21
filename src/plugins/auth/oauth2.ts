/**
 * auth/oauth2: OAUTHBEARER (RFC 7628) and XOAUTH2 against an OAuth 2.0 token introspection
 * endpoint (RFC 7662): the token is POSTed there (with the client credentials of this server,
 * HTTP Basic), and accepted when the answer is `active`, not expired, carries the required scope,
 * and names the user the client claimed (`username`, or the claim configured).
 * Security: the endpoint down, slow (`timeout`), or answering anything but a JSON 200 is a
 * temporary failure (454), never an acceptance; the token and the client secret never reach a log.
 */
import { authenticated } from '../../host/auth.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { AuthTokenHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { defer, reject } from '../../host/verdict.ts'

/** An introspection answer larger than this is not one (RFC 7662 answers are a few hundred bytes). */
const MAX_ANSWER = 64 * 1024

interface Introspection {
  readonly active?: unknown
  readonly scope?: unknown
  readonly exp?: unknown
  readonly nbf?: unknown
  readonly [claim: string]: unknown
}

/** Reads at most MAX_ANSWER bytes of the body; undefined past it. */
async function boundedText(res: Response): Promise<string | undefined> {
  const reader = res.body?.getReader()
  if (reader === undefined) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.length
    if (size > MAX_ANSWER) {
      await reader.cancel()
      return undefined
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

export default definePlugin({
  name: 'auth/oauth2',
  aliases: ['auth/oauth2_introspection'],
  description: 'AUTH OAUTHBEARER and XOAUTH2 with OAuth 2.0 token introspection (RFC 7662)',
  options: {
    url: opt.string({ positional: 0, pattern: /^https?:\/\/\S+$/, description: 'the introspection endpoint' }),
    client_id: opt.optionalString({ description: "this server's client id at the endpoint (HTTP Basic)" }),
    client_secret: opt.optionalString({ description: "this server's client secret at the endpoint" }),
    user_claim: opt.string({ default: 'username', description: 'the claim that names the user' }),
    scope: opt.optionalString({ description: 'a scope the token must carry (e.g. smtp)' }),
    timeout: opt.number({ default: 5, min: 0.1, max: 60, description: 'seconds the endpoint may take' }),
  },
  timeoutMs: 65_000,
  setup({ options, clock }) {
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    }
    if (options.client_id !== undefined) {
      // RFC 6749 §2.3.1: both parts form-urlencoded before Basic.
      const id = encodeURIComponent(options.client_id)
      const secret = encodeURIComponent(options.client_secret ?? '')
      headers.authorization = `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`
    }
    const unavailable = (ctx: Parameters<AuthTokenHook>[0], why: string) => {
      ctx.log.warn(`token introspection unavailable: ${why}`)
      ctx.result('error', `introspection: ${why}`)
      return defer()
    }

    const authToken: AuthTokenHook = async (ctx, t) => {
      let answer: Introspection
      try {
        const res = await fetch(options.url, {
          method: 'POST',
          headers,
          body: new URLSearchParams({ token: t.token, token_type_hint: 'access_token' }).toString(),
          signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(options.timeout * 1000)]),
          redirect: 'error',
        })
        const text = await boundedText(res)
        if (res.status !== 200) return unavailable(ctx, `HTTP ${res.status}`)
        if (text === undefined) return unavailable(ctx, 'answer too large')
        const parsed: unknown = JSON.parse(text)
        if (typeof parsed !== 'object' || parsed === null) return unavailable(ctx, 'answer is not a JSON object')
        answer = parsed as Introspection
      } catch (e) {
        // The message of a failed fetch names the URL, never the request body.
        return unavailable(ctx, e instanceof SyntaxError ? 'answer is not JSON' : (e as Error).message)
      }
      const refuse = (why: string) => {
        ctx.result('fail', `${t.mechanism}: ${why}`)
        return reject()
      }
      if (answer.active !== true) return refuse('token not active')
      const now = clock.now() / 1000
      if (typeof answer.exp === 'number' && answer.exp <= now) return refuse('token expired')
      if (typeof answer.nbf === 'number' && answer.nbf > now) return refuse('token not yet valid')
      if (options.scope !== undefined) {
        const scopes = typeof answer.scope === 'string' ? answer.scope.split(' ') : []
        if (!scopes.includes(options.scope)) return refuse(`token lacks scope ${options.scope}`)
      }
      const owner = answer[options.user_claim]
      if (typeof owner !== 'string' || owner === '') return refuse(`no ${options.user_claim} in the introspection`)
      if (t.user !== '' && t.user.toLowerCase() !== owner.toLowerCase())
        return refuse(`token of ${JSON.stringify(owner.slice(0, 64))}, not of the user claimed`)
      ctx.result('pass', `${t.mechanism}: token of ${owner}`)
      return authenticated(owner)
    }
    return { hooks: { authToken } }
  },
})
