/**
 * Mechanisms a backend runs itself (`authSasl`, Dovecot SASL): the core hands the plugin that
 * offered the mechanism a channel to the client and renders its verdict. The backend names the
 * user it authenticated (`authenticated(user)`): the core has not seen the exchange's meaning.
 */
import type { SessionCore } from '../session-core.ts'
import type { AuthChannel } from './channel.ts'
import { type AuthOutcome, ended, outcomeOf, temporary } from './outcome.ts'

export async function backendExchange(s: SessionCore, plugin: string, channel: AuthChannel): Promise<AuthOutcome> {
  const { verdict } = await s.runner.chainOne(plugin, 'authSasl', s, channel)
  channel.close()
  if (channel.ended !== undefined) return ended(channel.ended)
  // It offered the mechanism, then did not run it: its service is gone, not the client's fault.
  if (verdict.kind === 'pass' && !channel.used) {
    s.log.warn(`AUTH ${channel.mechanism}: ${plugin} offered it but passed`)
    return temporary
  }
  return outcomeOf(verdict, undefined, (m) => s.log.error(`AUTH ${channel.mechanism}: ${plugin}: ${m}`))
}
