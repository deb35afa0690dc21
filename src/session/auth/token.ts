/**
 * OAUTHBEARER (RFC 7628) and XOAUTH2, run by the core for `authToken` backends: the client sends
 * its bearer token at once; a backend decides. A refused token gets the RFC 7628 §3.2.2 error
 * status as a last challenge, whose dummy response precedes the 535 (XOAUTH2 clients answer it
 * with an empty line, OAUTHBEARER ones with ^A). A backend that cannot answer: 454, no challenge.
 */
import type { TokenMechanism } from '../../host/auth.ts'
import { type BearerMessage, oauthErrorStatus, parseOauthBearer, parseXoauth2 } from '../../protocol/oauth.ts'
import type { SessionCore } from '../session-core.ts'
import type { AuthChannel } from './channel.ts'
import { type AuthOutcome, ended, failure, outcomeOf } from './outcome.ts'

export async function tokenExchange(
  s: SessionCore,
  mechanism: TokenMechanism,
  channel: AuthChannel,
): Promise<AuthOutcome> {
  const response = channel.initialResponse ?? (await channel.challenge(''))
  if (response === undefined) return ended(channel.ended ?? 'gone')
  const message: BearerMessage | undefined =
    mechanism === 'OAUTHBEARER' ? parseOauthBearer(response) : parseXoauth2(response)
  if (message === undefined) return failure(undefined)
  const { verdict } = await s.runner.chain('authToken', s, { mechanism, ...message })
  const user = message.user === '' ? undefined : message.user
  const outcome = outcomeOf(verdict, user, (m) => s.log.error(`AUTH ${mechanism}: ${m}`))
  if (outcome.kind !== 'failure') return outcome
  // Whatever the client answers (^A, an empty line, even `*`), the token was refused: 535.
  await channel.challenge(oauthErrorStatus())
  return channel.ended === 'gone' ? ended('gone') : failure(user)
}
