/**
 * Writing the one Authentication-Results header (RFC 8601 §2.2) from the recorded results, and
 * removing inbound ones that claim our authserv-id (§5: they did not come from us, so they are
 * forgeries). Inbound headers of other authserv-ids stay as they are: they vouch for nothing
 * here, and renaming them would break a DKIM signature that covers them.
 * Security: every value written is sanitised (no CTLs, so no header injection) and quoted where
 * it is not an RFC 2045 token; reasons and comments are bounded.
 */
import type { Connection } from '../host/context.ts'
import type { Notes } from '../host/keys.ts'
import type { HeaderBlock } from '../message/headers.ts'
import {
  type AuthProperty,
  type AuthResult,
  AuthResultsClosed,
  ConnectionAuthResults,
  methodOrder,
  TransactionAuthResults,
  WrittenAuthResults,
} from './auth-results.ts'

const HEADER = 'Authentication-Results'
/** Longest reason or comment written; a remote party's text (an SPF explanation) can be long. */
const TEXT_LIMIT = 256

/** RFC 2045 token: US-ASCII without SPACE, CTLs and tspecials. */
const token = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/
/** RFC 8601 pvalue's `[ [ local-part ] "@" ] domain-name`, unquoted. */
const mailboxOrDomain = /^[!#$%&'*+\-/=?^_`{|}~0-9A-Za-z.]*@[0-9A-Za-z](?:[0-9A-Za-z.-]*[0-9A-Za-z])?$/

/** Drops control characters (CR, LF, NUL, ...) and bounds the length. */
function clean(text: string, limit = TEXT_LIMIT): string {
  const s = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim()
  return s.length > limit ? `${s.slice(0, limit - 3)}...` : s
}

function quoted(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`
}

/** RFC 2045 value: a token as is, anything else as a quoted-string. */
export function formatValue(text: string): string {
  const s = clean(text)
  return token.test(s) ? s : quoted(s)
}

function formatPropertyValue(p: AuthProperty): string {
  const s = clean(p.value)
  return token.test(s) || mailboxOrDomain.test(s) ? s : quoted(s)
}

function formatComment(text: string): string {
  return `(${clean(text).replace(/[\\()]/g, (c) => `\\${c}`)})`
}

/** `method=result (comment) reason="..." ptype.property=value ...` */
export function formatResinfo(r: AuthResult): string {
  let out = `${r.method}=${r.result}`
  if (r.comment !== undefined && r.comment !== '') out += ` ${formatComment(r.comment)}`
  if (r.reason !== undefined && r.reason !== '') out += ` reason=${quoted(clean(r.reason))}`
  for (const p of r.properties) out += ` ${p.type}.${p.name}=${formatPropertyValue(p)}`
  return out
}

/**
 * The header's value: `authserv-id; resinfo; resinfo`, methods in a fixed order (methodOrder)
 * and, within a method, in the order added; `authserv-id; none` without results (§2.2).
 * @example formatAuthResults('mx.example.org', [{ method: 'spf', result: 'pass', properties: [] }]) // 'mx.example.org; spf=pass'
 */
export function formatAuthResults(authservId: string, results: readonly AuthResult[], separator = '; '): string {
  const sorted = [...results].sort((a, b) => methodOrder.indexOf(a.method) - methodOrder.indexOf(b.method))
  const resinfos = sorted.length === 0 ? ['none'] : sorted.map(formatResinfo)
  return [formatValue(authservId), ...resinfos].join(separator)
}

/**
 * The authserv-id an Authentication-Results value claims (RFC 8601 §2.2: the first value after
 * optional comments and white space), or undefined when it has none we can read.
 */
export function authservIdOf(value: string): string | undefined {
  let i = skipCfws(value, 0)
  if (i === undefined || i >= value.length) return undefined
  if (value[i] === '"') {
    let out = ''
    for (i++; i < value.length; i++) {
      const c = value[i]
      if (c === '\\') out += value[++i] ?? ''
      else if (c === '"') return out
      else out += c
    }
    return undefined
  }
  const m = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~\u0080-\uffff]+/.exec(value.slice(i))
  return m?.[0]
}

/** Skips white space and (nested) comments; undefined when a comment is not closed. */
function skipCfws(s: string, from: number): number | undefined {
  let i = from
  for (;;) {
    while (i < s.length && /[ \t\r\n]/.test(s[i] ?? '')) i++
    if (s[i] !== '(') return i
    let depth = 0
    for (; i < s.length; i++) {
      const c = s[i]
      if (c === '\\') i++
      else if (c === '(') depth++
      else if (c === ')' && --depth === 0) break
    }
    if (depth !== 0) return undefined
    i++
  }
}

const sameId = (a: string, b: string): boolean =>
  a.toLowerCase().replace(/\.$/, '') === b.toLowerCase().replace(/\.$/, '')

/** Removes the Authentication-Results fields that claim one of these authserv-ids; returns the count. */
export function removeForgedAuthResults(headers: HeaderBlock, ours: readonly string[]): number {
  const values = headers.get(HEADER)
  let removed = 0
  // From the last, so that the indexes of those still to remove do not move.
  for (let i = values.length - 1; i >= 0; i--) {
    const id = authservIdOf(values[i] ?? '')
    if (id !== undefined && ours.some((o) => sameId(o, id))) removed += headers.remove(HEADER, i)
  }
  return removed
}

export interface AuthResultsSettings {
  /** Our authserv-id (`me-auth-results`, else `me`), or undefined when the header is off (`none`). */
  readonly authservId: string | undefined
  /** Our host name, `me`: headers claiming it are forged as well. */
  readonly me: string
}

/**
 * The core's step after dataPostHeaders: drop forged headers, then prepend ours (a trace-like
 * field, RFC 8601 §5) made from the connection's and the transaction's results, with `auth`
 * from the SMTP AUTH of the session when no plugin reported it. Closes the transaction's results.
 * Writes nothing when no method has a result (a message nobody checked gets no header).
 */
export function writeAuthResults(
  headers: HeaderBlock,
  settings: AuthResultsSettings,
  connection: Pick<Connection, 'notes' | 'auth'>,
  txn: { readonly notes: Notes },
): string | undefined {
  txn.notes.set(AuthResultsClosed, true)
  const ids = settings.authservId === undefined ? [settings.me] : [settings.authservId, settings.me]
  removeForgedAuthResults(headers, ids)
  if (settings.authservId === undefined) return undefined
  const results = [...connection.notes.get(ConnectionAuthResults), ...txn.notes.get(TransactionAuthResults)]
  const auth = connection.auth
  if (auth !== undefined && !results.some((r) => r.method === 'auth'))
    results.push({
      method: 'auth',
      result: 'pass',
      comment: auth.mechanism,
      properties: [{ type: 'smtp', name: 'auth', value: auth.user }],
    })
  if (results.length === 0) return undefined
  const value = formatAuthResults(settings.authservId, results)
  // One result per line, as readers expect; folding inside a result would split it anywhere.
  headers.prepend(HEADER, formatAuthResults(settings.authservId, results, ';\r\n\t'))
  txn.notes.set(WrittenAuthResults, value)
  return value
}
