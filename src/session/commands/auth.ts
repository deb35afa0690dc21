/**
 * AUTH (RFC 4954). The mechanisms offered follow from the auth hooks that plugins registered
 * (session/auth/mechanisms.ts); the exchanges live in session/auth/. Here: when AUTH is allowed,
 * and what an outcome does to the session. Failures are counted per connection, cost a point of
 * karma, are delayed, and end the session at the limit; unknown user and bad password look the
 * same (535 5.7.8). Plugins may refuse an attempt before it starts (`authAttempt`) and see or
 * overrule its outcome (`authOutcome`): limits of failures across connections (the limit plugin).
 */

import { Karma, Naughty } from '../../host/conventions.ts'
import type { AuthAttemptOutcome } from '../../host/hook-map.ts'
import type { Verdict } from '../../host/verdict.ts'
import type { Reply } from '../../protocol/reply.ts'
import { backendExchange } from '../auth/backend.ts'
import { AuthChannel, decodeResponse } from '../auth/channel.ts'
import { type Mechanism, sessionMechanisms } from '../auth/mechanisms.ts'
import type { AuthOutcome } from '../auth/outcome.ts'
import { passwordExchange } from '../auth/password.ts'
import { scramExchange } from '../auth/scram.ts'
import { tokenExchange } from '../auth/token.ts'
import { sleep } from '../clock.ts'
import { Replies, verdictReply } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'

/** The names EHLO lists after AUTH. */
export function authMechanisms(s: SessionCore): string[] {
  return sessionMechanisms(s).map((m) => m.name)
}

/** Whether this session offers AUTH (RFC 4954 §3): mechanisms to offer, and TLS when policy wants it. */
export function authOffered(s: SessionCore): boolean {
  return (s.connection.tls !== undefined || !s.settings.policies.authRequiresTls) && sessionMechanisms(s).length > 0
}

export async function auth(s: SessionCore, args: string): Promise<void> {
  const mechanisms = sessionMechanisms(s)
  if (mechanisms.length === 0) return s.error(Replies.authNotAvailable)
  if (s.phase.name === 'greeted' || s.phase.name === 'connected') return s.error(Replies.needHelo)
  if (s.connection.auth !== undefined) return s.error(Replies.authAlready)
  if (s.transaction !== undefined) return s.error(Replies.authInTxn)
  if (s.connection.tls === undefined && s.settings.policies.authRequiresTls) return s.error(Replies.authNeedsTls)
  const [name = '', initialText, ...extra] = args.trim().split(/ +/)
  const mechanism = mechanisms.find((m) => m.name === name.toUpperCase())
  if (extra.length > 0 || mechanism === undefined) return s.error(Replies.authMechanism)
  const initial = initialText === undefined ? undefined : decodeResponse(initialText)
  if (initial !== undefined && !Buffer.isBuffer(initial)) return s.error(initial)
  if (s.runner.has('authAttempt')) {
    const refusal = refusalOf((await s.runner.chain('authAttempt', s, { mechanism: mechanism.name })).verdict)
    if (refusal !== undefined) return refusal.disconnect ? s.close(refusal.reply) : s.error(refusal.reply)
  }
  const channel = new AuthChannel(s, mechanism.name, initial)
  let outcome: AuthOutcome
  try {
    outcome = await exchange(s, mechanism, channel)
  } finally {
    channel.close()
  }
  const overruled =
    (outcome.kind === 'success' || outcome.kind === 'failure') && s.runner.has('authOutcome')
      ? refusalOf((await s.runner.chain('authOutcome', s, resultOf(mechanism.name, outcome))).verdict)
      : undefined
  s.metrics?.auth(
    mechanism.name,
    outcome.kind === 'success'
      ? overruled === undefined
        ? 'success'
        : 'failure'
      : outcome.kind === 'failure'
        ? 'failure'
        : outcome.kind === 'temporary'
          ? 'tempfail'
          : 'aborted',
  )
  switch (outcome.kind) {
    case 'success':
      if (overruled !== undefined) {
        s.log.notice(`authentication of ${JSON.stringify(outcome.user.slice(0, 64))} refused by a plugin`)
        return overruled.disconnect ? s.close(overruled.reply) : s.error(overruled.reply)
      }
      s.connection.auth = { user: outcome.user, mechanism: mechanism.name }
      s.connection.relayClient = true
      s.connection.notes.delete(Naughty)
      s.log.info(`authenticated ${outcome.user} with ${mechanism.name}`)
      return s.send(outcome.reply)
    case 'failure':
      return failed(s, outcome.user, overruled)
    case 'temporary':
      if (outcome.disconnect) return s.close(outcome.reply)
      return s.error(outcome.reply)
    case 'ended':
      if (outcome.end === 'gone') return
      return s.error(outcome.end)
  }
}

function exchange(s: SessionCore, mechanism: Mechanism, channel: AuthChannel): Promise<AuthOutcome> {
  switch (mechanism.route) {
    case 'PLAIN':
    case 'LOGIN':
    case 'CRAM-MD5':
      return passwordExchange(s, mechanism.route, channel)
    case 'SCRAM-SHA-256':
    case 'SCRAM-SHA-256-PLUS':
      return scramExchange(s, mechanism.route, channel)
    case 'OAUTHBEARER':
    case 'XOAUTH2':
      return tokenExchange(s, mechanism.route, channel)
    case 'sasl':
      return backendExchange(s, mechanism.plugin ?? '', channel)
  }
}

const resultOf = (mechanism: string, o: AuthOutcome & { kind: 'success' | 'failure' }): AuthAttemptOutcome => ({
  mechanism,
  user: o.user,
  success: o.kind === 'success',
})

interface Refusal {
  readonly reply: Reply
  readonly disconnect: boolean
}

const gateDefaults = { reject: Replies.authFailed, defer: Replies.authTempFail }

/** A plugin's refusal of an attempt or an outcome; accept and pass change nothing. */
function refusalOf(v: Verdict): Refusal | undefined {
  if (v.kind === 'reject')
    return { reply: verdictReply(v, gateDefaults) ?? Replies.authFailed, disconnect: v.disconnect }
  if (v.kind === 'defer') {
    // The runner's failure verdict (451 4.3.0) is no AUTH reply: RFC 4954 §6 has 454 4.7.0.
    const r = verdictReply(v, gateDefaults) ?? Replies.authTempFail
    return { reply: v.disconnect || r.code === 454 ? r : Replies.authTempFail, disconnect: v.disconnect }
  }
  if (v.kind === 'done') return { reply: Replies.authTempFail, disconnect: false }
  return undefined
}

async function failed(s: SessionCore, user: string | undefined, overruled: Refusal | undefined): Promise<void> {
  s.log.notice(`authentication failed for ${JSON.stringify((user ?? '').slice(0, 64))}`)
  const n = ++s.counters.authFailures
  // The karma plugin counts a connection with enough of these as naughty.
  s.connection.notes.set(Karma, s.connection.notes.get(Karma) - 1)
  const delayMs = s.settings.timeouts.authFailureDelayMs
  if (delayMs > 0) await sleep(delayMs, s.signal)
  if (n >= s.settings.limits.authFailures) return s.close(Replies.authTooManyFailures)
  if (overruled !== undefined) return overruled.disconnect ? s.close(overruled.reply) : s.error(overruled.reply)
  return s.error(Replies.authFailed)
}
