/**
 * A spamd client (SpamAssassin's daemon; the SPAMC/1.5 protocol of spamd's PROTOCOL file): the
 * `HEADERS` command, which answers with the message's header section as SpamAssassin would
 * rewrite it (its X-Spam-* fields) and a `Spam: True ; 7.3 / 5.0` line. The message is streamed
 * from the spool with back-pressure after a `Content-length`, never loaded whole; one deadline
 * covers connect, send and reply, and the reply is bounded.
 *
 * Not here: SYMBOLS/REPORT/TELL (learning), compression, SSL. The `User` sent selects
 * SpamAssassin's per-user preferences (spamd -x --virtual-config-dir, or SQL/LDAP prefs).
 */
import type { ConnectTarget } from '../../net/index.ts'
import { type Connector, exchange, printable, ScannerError, writeAll, writeOne } from '../exchange.ts'

export interface SpamdOptions {
  readonly connect: Connector
  /** spamd's Unix socket (`{ path }`) or `{ host, port }` (783). */
  readonly target: ConnectTarget
  readonly timeoutMs: number
  readonly signal?: AbortSignal | undefined
  /** Whose preferences spamd applies; printable ASCII without spaces. */
  readonly user?: string | undefined
  /** Largest reply accepted (default 1 MiB: the message's header section comes back). */
  readonly maxReplyBytes?: number
}

export interface SpamdField {
  readonly name: string
  /** Unfolded (the CRLFs of folding removed, the whitespace after them kept). */
  readonly value: string
}

export interface SpamdResult {
  readonly isSpam: boolean
  readonly score: number
  readonly threshold: number
  /** Every field of the header section spamd returned, in order. */
  readonly fields: readonly SpamdField[]
}

export interface SpamdMessage {
  /** The message's bytes, in order (a new stream over the spool). */
  readonly stream: AsyncIterable<Buffer | string>
  /** Exactly how many bytes `stream` yields (spamd reads Content-length bytes). */
  readonly length: number
}

const USER = /^[\x21-\x7e]{1,256}$/

/** Asks spamd for its verdict and its headers. */
export async function spamdHeaders(message: SpamdMessage, o: SpamdOptions): Promise<SpamdResult> {
  if (o.user !== undefined && !USER.test(o.user))
    throw new ScannerError('refused', `spamd user "${printable(o.user)}" is not printable ASCII without spaces`)
  const head =
    'HEADERS SPAMC/1.5\r\n' +
    `Content-length: ${message.length}\r\n` +
    (o.user === undefined ? '' : `User: ${o.user}\r\n`) +
    '\r\n'
  const reply = await exchange({
    connect: o.connect,
    target: o.target,
    timeoutMs: o.timeoutMs,
    signal: o.signal,
    maxReplyBytes: o.maxReplyBytes ?? 1024 * 1024,
    async write(socket, signal) {
      await writeOne(socket, head, signal)
      await writeAll(socket, message.stream, signal)
    },
    complete: replyLength,
  })
  return parseSpamdReply(reply)
}

/** Where the reply's header block ends: the offset of its empty line and the separator's length. */
function headEnd(received: Buffer): { at: number; sep: number } | undefined {
  const crlf = received.indexOf('\r\n\r\n')
  const lf = received.indexOf('\n\n')
  if (crlf < 0 && lf < 0) return undefined
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { at: crlf, sep: 4 }
  return { at: lf, sep: 2 }
}

/**
 * The reply is complete when its body has Content-length bytes; a reply without a body (an
 * error status) when spamd closes the connection.
 */
function replyLength(received: Buffer, ended: boolean): number | undefined {
  const end = headEnd(received)
  if (end === undefined) return ended && received.length > 0 ? received.length : undefined
  const head = received.subarray(0, end.at).toString('latin1')
  const m = /^content-length:\s*(\d{1,10})\s*$/im.exec(head)
  if (m === null) return ended ? received.length : undefined
  const total = end.at + end.sep + Number(m[1])
  if (received.length >= total) return total
  return ended ? received.length : undefined
}

/** Parses `SPAMD/1.1 0 EX_OK`, its headers (`Spam: True ; 1000.0 / 5.0`) and the header section after them. */
export function parseSpamdReply(reply: Buffer): SpamdResult {
  const text = reply.toString('utf8')
  const firstEnd = text.indexOf('\n')
  const status = (firstEnd < 0 ? text : text.slice(0, firstEnd)).replace(/\r$/, '')
  const sm = /^SPAMD\/\d+\.\d+ (\d+) (\S.*)$/.exec(status)
  if (sm === null) throw new ScannerError('malformed', `spamd answered "${printable(status)}"`)
  if (sm[1] !== '0') throw new ScannerError('refused', `spamd: ${printable(`${sm[1]} ${sm[2]}`)}`)
  const end = headEnd(reply)
  if (end === undefined) throw new ScannerError('malformed', 'spamd reply has no end of its headers')
  const head = reply.subarray(0, end.at).toString('latin1')
  const spam = /^Spam:\s*(True|False|Yes|No)\s*;\s*(-?\d+(?:\.\d+)?)\s*\/\s*(-?\d+(?:\.\d+)?)\s*$/im.exec(head)
  if (spam === null) throw new ScannerError('malformed', 'spamd reply has no "Spam: ... ; score / threshold" line')
  const lengthLine = /^content-length:\s*(\d+)\s*$/im.exec(head)
  const body = reply.subarray(end.at + end.sep)
  if (lengthLine !== null && body.length !== Number(lengthLine[1]))
    throw new ScannerError('malformed', `spamd reply body is ${body.length} bytes, not ${lengthLine[1]}`)
  return {
    isSpam: /^(?:true|yes)$/i.test(spam[1] as string),
    score: Number(spam[2]),
    threshold: Number(spam[3]),
    fields: parseFields(body.toString('utf8')),
  }
}

/** A header section (RFC 5322 §2.2): `Name: value` lines, continuation lines start with WSP. */
function parseFields(section: string): SpamdField[] {
  const fields: { name: string; value: string }[] = []
  for (const line of section.split(/\r?\n/)) {
    if (line === '') break
    const last = fields[fields.length - 1]
    if (/^[ \t]/.test(line)) {
      if (last !== undefined) last.value += line
      continue
    }
    const m = /^([\x21-\x39\x3b-\x7e]+):[ \t]?(.*)$/.exec(line)
    if (m === null) throw new ScannerError('malformed', `spamd returned a header line "${printable(line)}"`)
    fields.push({ name: m[1] as string, value: m[2] as string })
  }
  return fields
}
