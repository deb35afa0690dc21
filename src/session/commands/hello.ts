/**
 * HELO and EHLO (RFC 5321 §4.1.1.1). A repeated HELO/EHLO resets the session state
 * (§4.1.4), unlike qpsmtpd's 503. EHLO lists the extensions this session may use.
 */
import type { Helo } from '../../host/context.ts'
import { reply } from '../../protocol/reply.ts'
import { verdictReply } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'
import { authMechanisms, authOffered } from './auth.ts'
import { forwardingKeywords } from './forward-attributes.ts'

// RFC 5321 §4.5.3.1.2: a domain is at most 255 octets, and the reply echoes it (§4.5.3.1.5: 512).
const MAX_HELO_ARGUMENT = 255

const heloDefaults = {
  reject: reply(550, '5.7.1', 'HELO/EHLO rejected'),
  defer: reply(450, '4.7.0', 'HELO/EHLO temporarily rejected, try again later'),
}

async function hello(s: SessionCore, verb: Helo['verb'], args: string): Promise<void> {
  const host = args.trim()
  if (host === '') return s.error(reply(501, '5.5.4', `Syntax: ${verb} hostname`))
  if (Buffer.byteLength(host) > MAX_HELO_ARGUMENT)
    return s.error(reply(501, '5.5.4', `Syntax: ${verb} hostname (at most ${MAX_HELO_ARGUMENT} octets)`))
  await s.resetTransaction()
  const { verdict } = await s.runner.chain(verb === 'EHLO' ? 'ehlo' : 'helo', s, host)
  if (verdict.kind === 'done') return
  if (verdict.kind === 'reject' || verdict.kind === 'defer') {
    const r = verdictReply(verdict, heloDefaults) ?? heloDefaults.reject
    if (verdict.disconnect) return s.close(r)
    s.log.info(`${verb} refused: ${r.code}`)
    return s.error(r)
  }
  s.connection.helo = { verb, host }
  s.phase = { name: 'ready', helo: s.connection.helo }
  const greeting = `${s.settings.me} Hello ${host} [${s.connection.remote.ip}]`
  if (verb === 'HELO') return s.send(reply(250, undefined, greeting))
  s.send(reply(250, undefined, [greeting, ...(await keywords(s))]))
}

async function keywords(s: SessionCore): Promise<string[]> {
  const p = s.settings.policies
  const tls = s.connection.tls !== undefined
  const out = ['PIPELINING']
  out.push(s.settings.limits.messageSize > 0 ? `SIZE ${s.settings.limits.messageSize}` : 'SIZE')
  out.push('8BITMIME')
  if (p.smtputf8) out.push('SMTPUTF8')
  out.push('ENHANCEDSTATUSCODES')
  if (p.chunking) out.push('CHUNKING', 'BINARYMIME')
  if (p.dsn) out.push('DSN')
  if (s.tls !== undefined && !tls) out.push('STARTTLS')
  if (authOffered(s) && s.connection.auth === undefined) out.push(`AUTH ${authMechanisms(s).join(' ')}`)
  if (p.requireTlsExtension && tls) out.push('REQUIRETLS')
  out.push(...forwardingKeywords(s))
  const extra: string[] = []
  await s.runner.all('capabilities', s, extra)
  for (const k of extra) if (/^[A-Za-z0-9][A-Za-z0-9 =._:-]*$/.test(k)) out.push(k)
  return out
}

export const ehlo = (s: SessionCore, args: string) => hello(s, 'EHLO', args)
export const helo = (s: SessionCore, args: string) => hello(s, 'HELO', args)
