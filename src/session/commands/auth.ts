/**
 * AUTH (RFC 4954). The mechanisms offered follow from the auth hooks that plugins registered
 * (session/auth/mechanisms.ts); the exchanges live in session/auth/. Here: when AUTH is allowed,
 * and what an outcome does to the session. Failures are counted per connection, delayed, and
 * end the session at the limit; unknown user and bad password look the same (535 5.7.8).
 */

import { Naughty } from '../../host/conventions.ts'
import { backendExchange } from '../auth/backend.ts'
import { AuthChannel, decodeResponse } from '../auth/channel.ts'
import { type Mechanism, sessionMechanisms } from '../auth/mechanisms.ts'
import type { AuthOutcome } from '../auth/outcome.ts'
import { passwordExchange } from '../auth/password.ts'
import { scramExchange } from '../auth/scram.ts'
import { sleep } from '../clock.ts'
import { Replies } from '../replies.ts'
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
  const channel = new AuthChannel(s, mechanism.name, initial)
  let outcome: AuthOutcome
  try {
    outcome = await exchange(s, mechanism, channel)
  } finally {
    channel.close()
  }
  switch (outcome.kind) {
    case 'success':
      s.connection.auth = { user: outcome.user, mechanism: mechanism.name }
      s.connection.relayClient = true
      s.connection.notes.delete(Naughty)
      s.log.info(`authenticated ${outcome.user} with ${mechanism.name}`)
      return s.send(outcome.reply)
    case 'failure':
      return failed(s, outcome.user)
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
    case 'sasl':
      return backendExchange(s, mechanism.plugin ?? '', channel)
  }
}

async function failed(s: SessionCore, user: string | undefined): Promise<void> {
  s.log.notice(`authentication failed for ${JSON.stringify((user ?? '').slice(0, 64))}`)
  const n = ++s.counters.authFailures
  const delayMs = s.settings.timeouts.authFailureDelayMs
  if (delayMs > 0) await sleep(delayMs, s.signal)
  if (n >= s.settings.limits.authFailures) return s.close(Replies.authTooManyFailures)
  return s.error(Replies.authFailed)
}
