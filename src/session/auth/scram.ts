/**
 * SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677, RFC 9266 tls-exporter) run by the
 * core with the secrets an `authScram` backend hands over: the client proves it knows the
 * password without sending it, and the server proves it holds the keys (server-final, sent as a
 * last 334 whose empty response precedes the 235, RFC 4954 §4).
 * Security: an unknown or refused user goes through the same exchange against made-up keys (a
 * salt derived from the user name and a shared key, the usual iteration count), and every
 * exchange pays one PBKDF2, so neither the messages nor the time tell which users exist.
 * A client that could bind to the channel but says the server cannot (`y`) while -PLUS was
 * offered is refused (RFC 5802 §6: a downgrade).
 */
import crypto from 'node:crypto'
import type { ScramFound, ScramMechanism } from '../../host/auth.ts'
import {
  authMessage,
  type ClientFirst,
  deriveScramKeys,
  parseClientFinal,
  parseClientFirst,
  type ScramKeys,
  serverFinal,
  serverFirst,
  validKeys,
  verifyClientProof,
} from '../../protocol/scram.ts'
import type { SessionCore } from '../session-core.ts'
import type { AuthChannel } from './channel.ts'
import { type AuthOutcome, ended, failure, outcomeOf, temporary } from './outcome.ts'
import type { AuthShared } from './shared.ts'

/** RFC 9266's channel binding type, the one -PLUS offers. */
const bindingType = 'tls-exporter'

/** Whether the session can offer SCRAM-SHA-256-PLUS: a TLS 1.3 channel to bind to. */
export const canBind = (s: SessionCore): boolean => s.connection.tls?.version === 'TLSv1.3'

export async function scramExchange(
  s: SessionCore,
  mechanism: ScramMechanism,
  channel: AuthChannel,
): Promise<AuthOutcome> {
  const firstBuf = channel.initialResponse ?? (await channel.challenge(''))
  if (firstBuf === undefined) return ended(channel.ended ?? 'gone')
  const first = parseClientFirst(firstBuf)
  if (first === undefined) return failure(undefined)
  const { user } = first
  const binding = bindingData(s, mechanism, first, channel)
  // A wrong binding or authzid is refused only at the end, like a wrong proof, after the same work.
  let refused = binding === undefined || (first.authzid !== '' && first.authzid !== user)

  const found = await s.runner.chain('authScram', s, { mechanism, hash: 'sha256', user })
  const v = found.verdict
  // The runner turns what authScram may not answer (accept, done) into a failure, a defer.
  if (v.kind !== 'credentials' && v.kind !== 'pass' && v.kind !== 'reject')
    return outcomeOf(v.kind === 'defer' ? v : { kind: 'defer', disconnect: false }, user, () => undefined)
  if (v.kind !== 'credentials') refused = true
  const keys = await resolveKeys(v.kind === 'credentials' ? v : undefined, user, s.auth)
  if (keys === 'invalid') {
    s.log.error(`AUTH ${mechanism}: ${found.plugin} gave unusable SCRAM credentials for ${JSON.stringify(user)}`)
    return temporary
  }

  const nonce = first.nonce + crypto.randomBytes(24).toString('base64')
  const serverFirstMessage = serverFirst(nonce, keys.salt, keys.iterations)
  const finalBuf = await channel.challenge(serverFirstMessage)
  if (finalBuf === undefined) return ended(channel.ended ?? 'gone')
  const final = parseClientFinal(finalBuf)
  if (final === undefined) return failure(user)
  const message = authMessage(first, serverFirstMessage, final)
  const proven = verifyClientProof(keys, message, final.proof)
  const bound = binding !== undefined && final.nonce === nonce && equal(final.channelBinding, binding)
  if (!proven || !bound || refused) return failure(user)

  const empty = await channel.challenge(serverFinal(keys, message))
  if (empty === undefined) return ended(channel.ended ?? 'gone')
  if (empty.length > 0) return failure(user)
  const name = v.kind === 'credentials' && typeof v.user === 'string' ? v.user : user
  return outcomeOf({ kind: 'authenticated', user: name }, user, (m) => s.log.error(`AUTH ${mechanism}: ${m}`))
}

/**
 * The `c=` value the client must send: the GS2 header, plus the tls-exporter data for -PLUS;
 * undefined when the client's flag does not fit what was offered.
 */
function bindingData(
  s: SessionCore,
  mechanism: ScramMechanism,
  first: ClientFirst,
  channel: AuthChannel,
): Buffer | undefined {
  const header = Buffer.from(first.gs2Header, 'utf8')
  const { binding } = first
  if (mechanism === 'SCRAM-SHA-256-PLUS') {
    if (binding.flag !== 'p' || binding.type !== bindingType) return undefined
    const data = channel.channelBinding(bindingType)
    return data === undefined ? undefined : Buffer.concat([header, data])
  }
  if (binding.flag === 'p') return undefined
  // RFC 5802 §6: `y` while we offered -PLUS means someone removed -PLUS from the client's view.
  if (binding.flag === 'y' && canBind(s)) return undefined
  return header
}

const equal = (a: Buffer, b: Buffer) => a.length === b.length && crypto.timingSafeEqual(a, b)

/** The derivation every exchange pays once (a spy in tests): PBKDF2 at the shared iteration count. */
export type Derive = (password: string, salt: Buffer, iterations: number) => Promise<ScramKeys>

/**
 * The keys to check the proof against, after exactly one derivation whatever the case: a
 * clear-text password is derived with the made-up salt of the user; stored keys, and a missing
 * or refused user (undefined: made-up keys, which no proof matches), pay for the derivation of
 * a random password. 'invalid': a backend's keys are unusable.
 */
export async function resolveKeys(
  found: ScramFound | undefined,
  user: string,
  shared: AuthShared,
  derive: Derive = deriveScramKeys,
): Promise<ScramKeys | 'invalid'> {
  const salt = crypto.createHmac('sha256', shared.saltKey).update(`salt:${user}`).digest().subarray(0, 16)
  const credentials = found?.credentials
  if (credentials !== undefined && 'password' in credentials) {
    if (typeof credentials.password !== 'string' || credentials.password === '') return 'invalid'
    return derive(credentials.password, salt, shared.iterations)
  }
  const madeUp = await derive(crypto.randomBytes(16).toString('hex'), salt, shared.iterations)
  if (credentials === undefined) return madeUp
  if (!validKeys(credentials)) return 'invalid'
  shared.iterations = credentials.iterations
  return credentials
}
