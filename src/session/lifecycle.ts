/**
 * The start and end of a connection: pre-connection and connect hooks, the greeting, and at
 * the end the disconnect and post-connection hooks and the one summary log line.
 */
import { LogLevels } from '../host/logger.ts'
import { reply } from '../protocol/reply.ts'
import { verdictReply } from './replies.ts'
import type { Session } from './session.ts'

const connectDefaults = {
  reject: reply(554, '5.7.1', 'Connection from you denied, bye bye.'),
  defer: reply(421, '4.7.0', 'Connection refused, try again later'),
}

async function open(s: Session): Promise<void> {
  // A refused connection gets a log line like a refused command (Postfix: "reject: CONNECT from").
  s.command = { verb: 'CONNECT', args: '' }
  for (const hook of ['preConnection', 'connect'] as const) {
    if (s.signal.aborted) return
    const { verdict } = await s.runner.chain(hook, s)
    if (verdict.kind === 'reject' || verdict.kind === 'defer') {
      s.log.info(`connection refused by ${hook}`)
      // Refusing the connection always closes it, so a temporary refusal is a 421 (RFC 5321 §3.8).
      return s.close(verdictReply({ ...verdict, disconnect: true }, connectDefaults))
    }
    if (verdict.kind === 'done' && hook === 'connect') {
      s.greeted()
      return
    }
  }
  const delay = s.settings.timeouts.greetingDelayMs
  if (delay > 0) await new Promise((r) => setTimeout(r, delay))
  const text = s.settings.greeting.includes('ESMTP') ? s.settings.greeting : `${s.settings.greeting} ESMTP`
  await s.sendNow(reply(220, undefined, text))
  s.greeted()
}

async function close(s: Session): Promise<void> {
  await s.runner.all('disconnect', s)
  await s.runner.all('postConnection', s)
  // Built only when it will be written: this runs once per connection.
  if (!s.log.enabled(LogLevels.info)) return
  const c = s.connection
  const seconds = ((Date.now() - c.startedAt.getTime()) / 1000).toFixed(3)
  s.log.info(
    `summary ip=${c.remote.ip} helo=${c.helo?.host ?? '-'} tls=${c.tls?.version ?? 'no'} auth=${c.auth?.user ?? '-'} ` +
      `relay=${c.relayClient ? 1 : 0} msgs=${c.messageCount} refused=${s.counters.refused} errors=${s.counters.errors} ` +
      `time=${seconds}s ` +
      `results=[${c.results.summary()}] ` +
      `plugin_time=[${[...s.hookTime].map(([plugin, ms]) => `${plugin}:${ms.toFixed(1)}ms`).join(' ')}]`,
  )
}

export const connectionHooks = { open, close }
