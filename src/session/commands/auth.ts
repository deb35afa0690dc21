/**
 * AUTH (RFC 4954) with PLAIN (RFC 4616), LOGIN and CRAM-MD5 (RFC 2195). The mechanisms
 * offered follow from the auth hooks that plugins registered. Failures are counted per
 * connection, delayed, and end the session at the limit; unknown user and bad password
 * look the same (535 5.7.8).
 */

import { Naughty } from '../../host/conventions.ts'
import type { AuthCredentials } from '../../host/hook-map.ts'
import { type Reply, reply } from '../../protocol/reply.ts'
import {
  cramChallenge,
  decodeBase64Strict,
  parseCramResponse,
  parseLoginField,
  parsePlain,
} from '../../protocol/sasl.ts'
import { sleep } from '../clock.ts'
import { Replies, verdictReply } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'

type Mechanism = AuthCredentials['mechanism']

export function authMechanisms(s: SessionCore): Mechanism[] {
  const r = s.runner
  const generic = r.has('auth')
  const out: Mechanism[] = []
  if (generic || r.has('authPlain')) out.push('PLAIN')
  if (generic || r.has('authLogin')) out.push('LOGIN')
  if (r.has('authCramMd5')) out.push('CRAM-MD5')
  return out
}

/** Whether this session offers AUTH (RFC 4954 §3): mechanisms to offer, and TLS when policy wants it. */
export function authOffered(s: SessionCore): boolean {
  return authMechanisms(s).length > 0 && (s.connection.tls !== undefined || !s.settings.policies.authRequiresTls)
}

const authDefaults = { accept: Replies.authOk, reject: Replies.authFailed, defer: Replies.authTempFail }

/** A step of the exchange: credentials, or the reply that ends it early. */
type Step = AuthCredentials | Reply

export async function auth(s: SessionCore, args: string): Promise<void> {
  const mechanisms = authMechanisms(s)
  if (mechanisms.length === 0) return s.error(Replies.authNotAvailable)
  if (s.phase.name === 'greeted' || s.phase.name === 'connected') return s.error(Replies.needHelo)
  if (s.connection.auth !== undefined) return s.error(Replies.authAlready)
  if (s.transaction !== undefined) return s.error(Replies.authInTxn)
  if (s.connection.tls === undefined && s.settings.policies.authRequiresTls) return s.error(Replies.authNeedsTls)
  const [mechText = '', initial, ...extra] = args.trim().split(/ +/)
  const mechanism = mechText.toUpperCase() as Mechanism
  if (extra.length > 0 || !mechanisms.includes(mechanism)) return s.error(Replies.authMechanism)
  const step = await exchange(s, mechanism, initial)
  if (step === undefined) return
  if ('code' in step) return s.error(step)
  const specific = mechanism === 'PLAIN' ? 'authPlain' : mechanism === 'LOGIN' ? 'authLogin' : 'authCramMd5'
  let { verdict } = await s.runner.chain(specific, s, step)
  if (verdict.kind === 'pass') verdict = (await s.runner.chain('auth', s, step)).verdict
  if (verdict.kind === 'accept') {
    s.connection.auth = { user: step.user, mechanism }
    s.connection.relayClient = true
    s.connection.notes.delete(Naughty)
    s.log.info(`authenticated ${step.user} with ${mechanism}`)
    s.send(verdictReply(verdict, authDefaults) ?? Replies.authOk)
    return
  }
  if (verdict.kind === 'done') return
  if (verdict.kind === 'defer') return s.error(verdictReply(verdict, authDefaults) ?? Replies.authTempFail)
  return failed(s, step.user)
}

async function failed(s: SessionCore, user: string): Promise<void> {
  s.log.notice(`authentication failed for ${JSON.stringify(user.slice(0, 64))}`)
  const n = ++s.counters.authFailures
  const delayMs = s.settings.timeouts.authFailureDelayMs
  if (delayMs > 0) await sleep(delayMs, s.signal)
  if (n >= s.settings.limits.authFailures) return s.close(Replies.authTooManyFailures)
  return s.error(Replies.authFailed)
}

/** Reads one SASL response: undefined when the session ended, a Reply for a cancel or a bad line. */
async function response(s: SessionCore, challenge: string): Promise<Buffer | Reply | undefined> {
  await s.sendNow(reply(334, undefined, challenge))
  const line = await s.readLine(s.settings.limits.authLine)
  if (line === undefined || typeof line !== 'string') return line
  return decodeResponse(line)
}

function decodeResponse(text: string): Buffer | Reply {
  if (text === '*') return Replies.authCancelled
  return decodeBase64Strict(text) ?? Replies.authBadBase64
}

async function exchange(s: SessionCore, mechanism: Mechanism, initial: string | undefined): Promise<Step | undefined> {
  const none = { password: undefined, cram: undefined }
  switch (mechanism) {
    case 'PLAIN': {
      const buf = initial === undefined ? await response(s, '') : decodeResponse(initial)
      if (buf === undefined || !Buffer.isBuffer(buf)) return buf
      const plain = parsePlain(buf)
      if (plain === undefined) return Replies.authBadBase64
      if (plain.authzid !== '' && plain.authzid !== plain.authcid) return Replies.authFailed
      return { mechanism, user: plain.authcid, password: plain.password, cram: undefined }
    }
    case 'LOGIN': {
      const userBuf = initial === undefined ? await response(s, 'VXNlcm5hbWU6') : decodeResponse(initial)
      if (userBuf === undefined || !Buffer.isBuffer(userBuf)) return userBuf
      const user = parseLoginField(userBuf)
      if (user === undefined) return Replies.authBadBase64
      const passBuf = await response(s, 'UGFzc3dvcmQ6')
      if (passBuf === undefined || !Buffer.isBuffer(passBuf)) return passBuf
      const password = parseLoginField(passBuf)
      if (password === undefined) return Replies.authBadBase64
      return { mechanism, user, password, cram: undefined }
    }
    case 'CRAM-MD5': {
      if (initial !== undefined) return Replies.authMechanism
      const challenge = cramChallenge(s.settings.me)
      const buf = await response(s, Buffer.from(challenge).toString('base64'))
      if (buf === undefined || !Buffer.isBuffer(buf)) return buf
      const parsed = parseCramResponse(buf)
      if (parsed === undefined) return Replies.authBadBase64
      return { ...none, mechanism, user: parsed.user, cram: { challenge, digest: parsed.digest } }
    }
  }
}
