/**
 * The `NAME=value` attributes of XCLIENT and XFORWARD (Postfix XCLIENT_README, XFORWARD_README):
 * xtext values, `[UNAVAILABLE]`/`[TEMPUNAVAIL]` for unknown, strict syntax for each name, and
 * applying them to the connection. Only trusted forwarders get here (ForwarderTrusted).
 */

import { ForwardedInfo, ForwarderTrusted } from '../../host/connection-keys.ts'
import type { Peer } from '../../host/context.ts'
import { normalizeIp } from '../../net/ip.ts'
import { reply } from '../../protocol/reply.ts'
import { decodeXtext } from '../../protocol/xtext.ts'
import { inTransaction } from '../phase.ts'
import type { SessionCore } from '../session-core.ts'

export type Attributes = Readonly<Record<string, string | undefined>>

const HOST = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9.])?$/
const PRINTABLE = /^[\x21-\x7e]{1,255}$/
const PORT = /^(?:0|[1-9]\d{0,4})$/

/**
 * An address as Postfix sends it (`IPV6:` prefix optional), in canonical text (IPv4-mapped as
 * IPv4); undefined if bad. A zone (`%eth0`) is refused: a forwarded client has none.
 */
function address(v: string): string | undefined {
  const text = v.toUpperCase().startsWith('IPV6:') ? v.slice(5) : v
  return text.includes('%') ? undefined : normalizeIp(text)
}

const checks: Readonly<Record<string, (v: string) => string | undefined>> = {
  NAME: (v) => (HOST.test(v) ? v.toLowerCase() : undefined),
  REVERSE_NAME: (v) => (HOST.test(v) ? v.toLowerCase() : undefined),
  ADDR: address,
  DESTADDR: address,
  PORT: (v) => (PORT.test(v) && Number(v) <= 65535 ? v : undefined),
  DESTPORT: (v) => (PORT.test(v) && Number(v) <= 65535 ? v : undefined),
  PROTO: (v) => (/^E?SMTP$/i.test(v) ? v.toUpperCase() : undefined),
  HELO: (v) => (PRINTABLE.test(v) ? v : undefined),
  LOGIN: (v) => (PRINTABLE.test(v) ? v : undefined),
  IDENT: (v) => (PRINTABLE.test(v) ? v : undefined),
  SOURCE: (v) => (/^(?:LOCAL|REMOTE)$/i.test(v) ? v.toUpperCase() : undefined),
}

/** Parses `NAME=value ...`; an unavailable value is present with `undefined`. */
export function parseAttributes(
  verb: 'XCLIENT' | 'XFORWARD',
  args: string,
  allowed: readonly string[],
): { ok: true; value: Attributes } | { ok: false; text: string } {
  const words = args
    .trim()
    .split(/ +/)
    .filter((w) => w !== '')
  if (words.length === 0) return { ok: false, text: `Syntax: ${verb} attribute=value...` }
  const out: Record<string, string | undefined> = {}
  for (const w of words) {
    const eq = w.indexOf('=')
    const name = (eq < 0 ? w : w.slice(0, eq)).toUpperCase()
    if (eq < 0 || !allowed.includes(name))
      return { ok: false, text: `Bad ${verb} attribute name: ${name.slice(0, 32)}` }
    const raw = w.slice(eq + 1)
    if (raw === '[UNAVAILABLE]' || raw === '[TEMPUNAVAIL]') {
      out[name] = undefined
      continue
    }
    const decoded = decodeXtext(raw)
    const value = decoded.ok ? checks[name]?.(decoded.value) : undefined
    if (value === undefined) return { ok: false, text: `Bad ${verb} ${name} syntax: ${raw.slice(0, 64)}` }
    out[name] = value
  }
  return { ok: true, value: out }
}

/** The checks both commands share; returns the attributes, or undefined after replying. */
export async function forwardPreamble(
  s: SessionCore,
  verb: 'XCLIENT' | 'XFORWARD',
  args: string,
  allowed: readonly string[],
): Promise<Attributes | undefined> {
  if (!s.connection.notes.get(ForwarderTrusted)) {
    s.log.notice(`${verb} refused: ${s.connection.remote.ip} is not in xclient_trusted`)
    await s.error(reply(550, '5.7.0', 'Error: insufficient authorization'))
    return undefined
  }
  if (inTransaction(s.phase)) {
    await s.error(reply(503, '5.5.1', 'Error: MAIL transaction in progress'))
    return undefined
  }
  const r = parseAttributes(verb, args, allowed)
  if (!r.ok) {
    await s.error(reply(501, '5.5.4', r.text))
    return undefined
  }
  return r.value
}

/** Applies client attributes (NAME, ADDR, PORT, HELO, PROTO, DESTADDR, DESTPORT) to the connection. */
export function applyClient(s: SessionCore, verb: 'XCLIENT' | 'XFORWARD', a: Attributes): void {
  const c = s.connection
  const by: Peer = s.connection.notes.get(ForwardedInfo)?.by ?? c.remote
  const has = (k: string) => Object.hasOwn(a, k)
  if (has('ADDR') || has('PORT'))
    c.remote = {
      ip: has('ADDR') ? (a.ADDR ?? '0.0.0.0') : c.remote.ip,
      port: Number(has('PORT') ? (a.PORT ?? 0) : c.remote.port),
    }
  if (has('DESTADDR') || has('DESTPORT'))
    c.local = {
      ip: has('DESTADDR') ? (a.DESTADDR ?? '0.0.0.0') : c.local.ip,
      port: Number(has('DESTPORT') ? (a.DESTPORT ?? 0) : c.local.port),
    }
  if (has('NAME')) c.remoteHost = a.NAME
  if (has('HELO') && a.HELO !== undefined) c.helo = { verb: a.PROTO === 'SMTP' ? 'HELO' : 'EHLO', host: a.HELO }
  const attributes: Record<string, string> = {}
  for (const [k, v] of Object.entries(a)) if (v !== undefined) attributes[k] = v
  c.notes.set(ForwardedInfo, { command: verb, by, attributes })
  s.log.info(
    `${verb} from ${by.ip}: ${Object.entries(attributes)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  )
}

/** EHLO keywords for trusted forwarders only (Postfix advertises them the same way). */
export function forwardingKeywords(s: SessionCore): string[] {
  if (!s.connection.notes.get(ForwarderTrusted)) return []
  return [
    'XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT',
    'XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE',
  ]
}
