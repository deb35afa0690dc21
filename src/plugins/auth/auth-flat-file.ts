/**
 * auth/auth_flat_file: SMTP AUTH (PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256) against
 * `config/flat_auth_pw`, lines `user@domain:password` (qpsmtpd's plugin). Passwords may be clear
 * text or hashed in any form verifyPassword knows ({SHA512-CRYPT}, $6$, {SSHA256}, $scrypt$,
 * {SCRAM-SHA-256}, ...); CRAM-MD5 needs the clear text, SCRAM clear text or SCRAM keys, so each
 * is offered only when some entry allows it. User names compare case-insensitively.
 * Security: an unknown user costs about as much as a wrong password (a dummy verification), and
 * gets `pass` so that another auth plugin may try; with none left the core answers the same
 * 535 5.7.8 as for a wrong password. Passwords never reach the log.
 */
import { randomBytes } from 'node:crypto'
import { scramCredentials, scramPassword } from '../../host/auth.ts'
import type { HookContext } from '../../host/context.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { AuthCramMd5Hook, AuthPasswordHook, AuthScramHook } from '../../host/hook-map.ts'
import { accept, pass, reject, type Verdict } from '../../host/verdict.ts'
import { cramVerify } from '../../protocol/sasl.ts'
import { parseScramSecret, type ScramKeys } from '../../protocol/scram.ts'
import { storedCramSecret, verifyPassword } from './password-hash.ts'

/** A password verification: `verifyPassword`, or a recorder in tests. */
export type VerifyPassword = (stored: string, given: string) => Promise<boolean>

/** An entry's stored SCRAM-SHA-256 keys (`{SCRAM-SHA-256}iter,salt,stored,server`), if it is one. */
export function storedScramKeys(stored: string): ScramKeys | undefined {
  return /^\{SCRAM-SHA-256\}/i.test(stored) ? parseScramSecret(stored) : undefined
}

/** The entry an unknown user is checked against: the first hashed one, so both cost the same. */
export function dummyEntry(stored: readonly string[]): string {
  return stored.find((s) => storedCramSecret(s) === undefined) ?? `{PLAIN}${randomBytes(16).toString('hex')}`
}

/**
 * Checks `given` against `entry` (undefined: an unknown user) so that every outcome pays one
 * verification of a hashed entry: an unknown user is checked against `dummy`, and a clear-text
 * entry, cheap to check, pays for `dummy` too. Timing then does not tell which users exist.
 */
export async function verifyEntry(
  entry: string | undefined,
  given: string,
  dummy: string,
  verify: VerifyPassword = verifyPassword,
): Promise<boolean> {
  const ok = await verify(entry ?? dummy, given)
  if (entry !== undefined && storedCramSecret(entry) !== undefined && dummy !== entry) await verify(dummy, given)
  return entry !== undefined && ok
}

export default definePlugin({
  name: 'auth/auth_flat_file',
  aliases: ['auth_flat_file', 'auth/flat-file'],
  description: 'SMTP AUTH against config/flat_auth_pw (clear text or hashed passwords)',
  options: {},
  timeoutMs: 10_000,
  setup({ config, log }) {
    const users = new Map<string, string>()
    for (const l of config.located('flat_auth_pw')) {
      const colon = l.text.indexOf(':')
      // The line may hold a password: name the place, never the text.
      if (colon <= 0 || colon === l.text.length - 1)
        throw new Error(`${l.file}:${l.line}: expected user@domain:password`)
      const user = l.text.slice(0, colon).toLowerCase()
      if (!users.has(user)) users.set(user, l.text.slice(colon + 1))
    }
    const stored = [...users.values()]
    const isClear = (s: string) => storedCramSecret(s) !== undefined
    const dummy = dummyEntry(stored)
    const dummyCram = randomBytes(16).toString('hex')
    const cramUsable = stored.some(isClear)
    const scramUsable = stored.some((e) => isClear(e) || storedScramKeys(e) !== undefined)
    if (users.size === 0)
      log.warn(
        `${config.path('flat_auth_pw') === undefined ? 'no flat_auth_pw file' : 'flat_auth_pw has no entries'}: every AUTH will be refused`,
      )
    else
      log.info(
        `${users.size} user(s) in flat_auth_pw${cramUsable ? '' : '; CRAM-MD5 not offered (no clear-text password)'}` +
          `${scramUsable ? '' : '; SCRAM-SHA-256 not offered (no clear-text password or SCRAM keys)'}`,
      )

    const decide = (ctx: HookContext, entry: string | undefined, ok: boolean, mechanism: string): Verdict => {
      if (entry === undefined) {
        ctx.result('skip', 'unknown user')
        return pass('unknown user')
      }
      ctx.result(ok ? 'pass' : 'fail', `authflat/${mechanism}`)
      return ok ? accept() : reject()
    }
    const authPassword: AuthPasswordHook = async (ctx, login) => {
      const entry = users.get(login.user.toLowerCase())
      return decide(ctx, entry, await verifyEntry(entry, login.password, dummy), login.mechanism)
    }
    const authCramMd5: AuthCramMd5Hook = (ctx, creds) => {
      const entry = users.get(creds.user.toLowerCase())
      const secret = entry === undefined ? undefined : storedCramSecret(entry)
      const digest = creds.cram ?? { challenge: '', digest: '' }
      const ok = cramVerify(secret ?? dummyCram, digest.challenge, digest.digest) && secret !== undefined
      if (entry !== undefined && secret === undefined) ctx.log.notice('CRAM-MD5 needs a clear-text password')
      return decide(ctx, entry, ok, creds.mechanism)
    }
    const authScram: AuthScramHook = (ctx, lookup) => {
      const entry = users.get(lookup.user.toLowerCase())
      if (entry === undefined) {
        ctx.result('skip', 'unknown user')
        return pass('unknown user')
      }
      const keys = storedScramKeys(entry)
      if (keys !== undefined) return scramCredentials(keys)
      const clear = storedCramSecret(entry)
      if (clear !== undefined) return scramPassword(clear)
      ctx.log.notice(`${lookup.mechanism} needs a clear-text password or stored SCRAM keys`)
      ctx.result('fail', `authflat/${lookup.mechanism}: no usable entry`)
      return reject()
    }
    return {
      hooks: {
        authPassword,
        ...(cramUsable ? { authCramMd5 } : {}),
        ...(scramUsable ? { authScram } : {}),
      },
    }
  },
})
