/**
 * Type tests of the AUTH backend contract (src/host/auth.ts): what docs/plugins.md promises a
 * backend author must compile, and the mistakes under `@ts-expect-error` must not. A plugin
 * written against the qpsmtpd hooks (authPlain, authLogin, authCramMd5, auth) keeps compiling.
 */
import {
  type AuthCramMd5Hook,
  type AuthCredentials,
  type AuthHook,
  type AuthMechanismsHook,
  type AuthPasswordHook,
  type AuthPlainHook,
  type AuthSaslHook,
  type AuthScramHook,
  type AuthTokenHook,
  accept,
  authenticated,
  type BearerToken,
  defer,
  definePlugin,
  type PasswordLogin,
  pass,
  reject,
  type ScramCredentials,
  type ScramLookup,
  scramCredentials,
} from '../../src/index.ts'
import type { Equal, Expect } from './assert-type.ts'

// A plugin of the qpsmtpd hooks, with an exhaustive switch over the mechanisms it was written
// for: the new mechanisms come through new hooks, so its switch stays exhaustive.
export const legacy: AuthHook = async (_ctx, creds) => {
  switch (creds.mechanism) {
    case 'PLAIN':
    case 'LOGIN':
      return creds.password === 'secret' ? accept() : reject()
    case 'CRAM-MD5':
      return pass('no clear text here')
  }
}
export const legacyPlain: AuthPlainHook = (_ctx, c: AuthCredentials) => (c.user === 'a' ? accept() : pass())
export const legacyCram: AuthCramMd5Hook = (_ctx, c) => (c.cram === undefined ? pass() : reject())
export type MechanismsOfLegacyHooks = Expect<Equal<AuthCredentials['mechanism'], 'PLAIN' | 'LOGIN' | 'CRAM-MD5'>>

// A password backend: the password is always a string; accept, refuse, pass (unknown user), defer
// (down), or name the user it authenticated.
export const password: AuthPasswordHook = async (ctx, login) => {
  if (login.user === 'down') return defer()
  if (login.user === 'renamed') return authenticated(login.user.toLowerCase())
  ctx.log.info(`checking ${login.user} (${login.mechanism})`)
  return login.password === 'secret' ? accept() : login.user === 'known' ? reject() : pass('unknown user')
}
export type PasswordIsText = Expect<Equal<PasswordLogin['password'], string>>
export type PasswordMechanisms = Expect<Equal<PasswordLogin['mechanism'], 'PLAIN' | 'LOGIN'>>

// A SCRAM backend hands over stored secrets (an accept() is refused at run time: only the
// client's proof can accept).
const stored: ScramCredentials = {
  iterations: 4096,
  salt: Buffer.alloc(16),
  storedKey: Buffer.alloc(32),
  serverKey: Buffer.alloc(32),
}
export const scram: AuthScramHook = (_ctx, lookup: ScramLookup) =>
  lookup.user === 'alice' ? scramCredentials(stored) : lookup.user === 'locked' ? reject() : pass()
export const scramRenamed: AuthScramHook = () => scramCredentials(stored, 'alice@example.com')
// @ts-expect-error a SCRAM lookup cannot name a user without credentials
export const scramAuthenticates: AuthScramHook = () => authenticated('alice')
// @ts-expect-error the credentials are buffers, not base64 text
export const scramText: AuthScramHook = () => scramCredentials({ ...stored, salt: 'c2FsdA==' })

// A token backend gets the mechanism, the claimed user and the token.
export const token: AuthTokenHook = async (_ctx, t: BearerToken) =>
  t.mechanism === 'XOAUTH2' && t.token.length > 0 ? authenticated(t.user) : reject()

// A backend that runs whole exchanges names its mechanisms and talks over the core's channel.
export const mechanisms: AuthMechanismsHook = (ctx) => (ctx.connection.tls ? ['SCRAM-SHA-1', 'GSSAPI'] : [])
export const sasl: AuthSaslHook = async (_ctx, channel) => {
  const first = channel.initialResponse ?? (await channel.challenge(''))
  if (first === undefined) return reject() // the client cancelled: the core answers
  const binding = channel.channelBinding('tls-exporter')
  const second = await channel.challenge(Buffer.concat([first, binding ?? Buffer.alloc(0)]))
  return second === undefined ? reject() : authenticated('alice')
}
// @ts-expect-error mechanism names are answered synchronously (EHLO lists them)
export const asyncMechanisms: AuthMechanismsHook = async () => ['GSSAPI']
export const uniqueBinding: AuthSaslHook = async (_ctx, channel) => {
  // @ts-expect-error only tls-exporter bindings are given
  return channel.channelBinding('tls-unique') === undefined ? pass() : reject()
}

// The old and new hooks sit together in one plugin.
export const both = definePlugin({
  name: 'auth/both',
  options: {},
  setup: () => ({ hooks: { authPassword: password, authScram: scram, authCramMd5: legacyCram } }),
})
// @ts-expect-error a password hook is not a SCRAM lookup
export const mixedUp = definePlugin({ name: 'auth/x', options: {}, setup: () => ({ hooks: { authScram: password } }) })
