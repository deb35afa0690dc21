/**
 * What every password backend (checkpassword, LDAP, IMAP, SQL, vpopmaild, CVM) shares: a
 * backend answers `ok`, `bad`, `unknown` or `unavailable`, and this turns the answer into the
 * AUTH verdict, a result, a log line and two metrics, the same way for all of them.
 * - ok: accept (as the backend's name for the user, when it gives one); bad: 535;
 *   unknown: pass, so that a later backend may know the user (535 when none does);
 *   unavailable, a throw, or the hook's deadline: defer, 454 4.7.0, never 535 and never accept.
 * Security: a backend error's text is logged with the password cut out (a driver may echo what
 * it was sent); no answer logs the password.
 */
import { authenticated, type PasswordLogin } from '../../host/auth.ts'
import type { HookContext } from '../../host/context.ts'
import type { AuthPasswordHook } from '../../host/hook-map.ts'
import { accept, defer, pass, reject } from '../../host/verdict.ts'
import type { Counter, Metrics } from '../../metrics/index.ts'

export type BackendAnswer =
  | { readonly kind: 'ok'; readonly user?: string | undefined }
  | { readonly kind: 'bad'; readonly why: string }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'unavailable'; readonly why: string }

export const ok = (user?: string): BackendAnswer => ({ kind: 'ok', user })
export const bad = (why: string): BackendAnswer => ({ kind: 'bad', why })
export const unknownUser: BackendAnswer = { kind: 'unknown' }
export const unavailable = (why: string): BackendAnswer => ({ kind: 'unavailable', why })

/** Checks one password; may throw (counted as unavailable). */
export type PasswordCheck = (ctx: HookContext, login: PasswordLogin) => Promise<BackendAnswer>

/** `text` with every occurrence of `secret` (and of its base64) replaced, for a log line. */
export function withoutSecret(text: string, secret: string): string {
  if (secret === '') return text
  const b64 = Buffer.from(secret, 'utf8').toString('base64')
  return text.replaceAll(secret, '<password>').replaceAll(b64, '<password>')
}

const describeError = (e: unknown): string => {
  if (!(e instanceof Error)) return String(e)
  const code = (e as { code?: unknown }).code
  return typeof code === 'string' && !e.message.includes(code) ? `${e.message} (${code})` : e.message
}

/**
 * An `authPassword` hook for a backend named `label` (`checkpassword`, `ldap`, ...).
 *
 * @example
 *   const authPassword = passwordBackend({ plugin: 'auth/auth_imap', label: 'imap', metrics }, (ctx, login) =>
 *     imapLogin(login.user, login.password, ctx.signal))
 */
export function passwordBackend(
  api: { readonly plugin: string; readonly label: string; readonly metrics: Metrics },
  check: PasswordCheck,
): AuthPasswordHook {
  const checks = api.metrics.counter({
    name: 'qtsmtpd_auth_backend_checks_total',
    help: 'Passwords checked by authentication backends, by plugin and answer (ok, bad, unknown, unavailable)',
    labelNames: ['plugin', 'answer'],
  })
  const seconds = api.metrics
    .histogram({
      name: 'qtsmtpd_auth_backend_seconds',
      help: 'Time an authentication backend took to check a password',
      labelNames: ['plugin'],
    })
    .labels({ plugin: api.plugin })
  const counted = new Map<BackendAnswer['kind'], Counter>()
  const count = (kind: BackendAnswer['kind']) => {
    let c = counted.get(kind)
    if (c === undefined) counted.set(kind, (c = checks.labels({ plugin: api.plugin, answer: kind })))
    c.inc()
  }
  return async (ctx, login) => {
    const started = performance.now()
    let answer: BackendAnswer
    try {
      answer = await check(ctx, login)
    } catch (e) {
      answer = unavailable(ctx.signal.aborted ? 'the check was abandoned (deadline or disconnect)' : describeError(e))
    }
    seconds.observe((performance.now() - started) / 1000)
    count(answer.kind)
    const who = JSON.stringify(login.user.slice(0, 64))
    switch (answer.kind) {
      case 'ok':
        ctx.result('pass', `${api.label}/${login.mechanism}`)
        return answer.user === undefined || answer.user === login.user ? accept() : authenticated(answer.user)
      case 'bad':
        ctx.result('fail', `${api.label}: ${answer.why}`)
        return reject()
      case 'unknown':
        ctx.result('skip', 'unknown user')
        return pass('unknown user')
      case 'unavailable': {
        const why = withoutSecret(answer.why, login.password)
        ctx.log.warn(`${api.label} cannot check ${who} now: ${why}`)
        ctx.result('skip', `${api.label} unavailable`)
        return defer()
      }
    }
  }
}
