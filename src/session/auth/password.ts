/**
 * PLAIN (RFC 4616), LOGIN and CRAM-MD5 (RFC 2195), run by the core: it decodes what the client
 * sent and asks the password hooks in qpsmtpd's order, the mechanism's own hook (`authPlain`,
 * `authLogin`, `authCramMd5`), then `auth`, then (PLAIN, LOGIN) `authPassword`, each chain in
 * configuration order, until one decides.
 */
import type { AuthVerdict } from '../../host/auth.ts'
import type { AuthCredentials, HookName } from '../../host/hook-map.ts'
import { cramChallenge, parseCramResponse, parseLoginField, parsePlain } from '../../protocol/sasl.ts'
import { Replies } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'
import type { AuthChannel } from './channel.ts'
import { type AuthOutcome, ended, failure, outcomeOf } from './outcome.ts'

type PasswordMechanism = AuthCredentials['mechanism']

const ownHook = { PLAIN: 'authPlain', LOGIN: 'authLogin', 'CRAM-MD5': 'authCramMd5' } as const satisfies Record<
  PasswordMechanism,
  HookName
>

export async function passwordExchange(
  s: SessionCore,
  mechanism: PasswordMechanism,
  channel: AuthChannel,
): Promise<AuthOutcome> {
  const creds = await credentials(s, mechanism, channel)
  if ('kind' in creds) return creds
  let decided: AuthVerdict = (await s.runner.chain(ownHook[mechanism], s, creds)).verdict
  if (decided.kind === 'pass') decided = (await s.runner.chain('auth', s, creds)).verdict
  if (decided.kind === 'pass' && creds.password !== undefined && mechanism !== 'CRAM-MD5')
    decided = (await s.runner.chain('authPassword', s, { mechanism, user: creds.user, password: creds.password }))
      .verdict
  return outcomeOf(decided, creds.user, (m) => s.log.error(`AUTH ${mechanism}: ${m}`))
}

/** The next response: the initial one first, else one after a challenge. */
async function next(
  channel: AuthChannel,
  challenge: string,
  initial: Buffer | undefined,
): Promise<Buffer | AuthOutcome> {
  if (initial !== undefined) return initial
  const r = await channel.challenge(challenge)
  return r ?? ended(channel.ended ?? 'gone')
}

async function credentials(
  s: SessionCore,
  mechanism: PasswordMechanism,
  channel: AuthChannel,
): Promise<AuthCredentials | AuthOutcome> {
  const none = { password: undefined, cram: undefined }
  switch (mechanism) {
    case 'PLAIN': {
      const buf = await next(channel, '', channel.initialResponse)
      if (!Buffer.isBuffer(buf)) return buf
      const plain = parsePlain(buf)
      if (plain === undefined) return ended(Replies.authBadBase64)
      if (plain.authzid !== '' && plain.authzid !== plain.authcid) return failure(plain.authcid)
      return { mechanism, user: plain.authcid, password: plain.password, cram: undefined }
    }
    case 'LOGIN': {
      const userBuf = await next(channel, 'Username:', channel.initialResponse)
      if (!Buffer.isBuffer(userBuf)) return userBuf
      const user = parseLoginField(userBuf)
      if (user === undefined) return ended(Replies.authBadBase64)
      const passBuf = await next(channel, 'Password:', undefined)
      if (!Buffer.isBuffer(passBuf)) return passBuf
      const password = parseLoginField(passBuf)
      if (password === undefined) return ended(Replies.authBadBase64)
      return { mechanism, user, password, cram: undefined }
    }
    case 'CRAM-MD5': {
      // The server speaks first (RFC 2195): an initial response has nothing to answer.
      if (channel.initialResponse !== undefined) return ended(Replies.authMechanism)
      const challenge = cramChallenge(s.settings.me)
      const buf = await next(channel, challenge, undefined)
      if (!Buffer.isBuffer(buf)) return buf
      const parsed = parseCramResponse(buf)
      if (parsed === undefined) return ended(Replies.authBadBase64)
      return { ...none, mechanism, user: parsed.user, cram: { challenge, digest: parsed.digest } }
    }
  }
}
