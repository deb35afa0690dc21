/**
 * The OAuth 2.0 SASL messages: OAUTHBEARER (RFC 7628 §3.1) and Google's XOAUTH2, as a client sends
 * them, and the error status a server answers a bad token with (RFC 7628 §3.2.2).
 * Pure: no session, no policy. Parsers return undefined for anything malformed and never throw.
 * Security: the token is a bearer credential (RFC 6750 §2.1 b64token); never log it.
 */

export interface BearerMessage {
  /** OAUTHBEARER's authzid (`a=`) or XOAUTH2's `user=`; empty when OAUTHBEARER gave none. */
  readonly user: string
  readonly token: string
  readonly host: string | undefined
  readonly port: number | undefined
}

const MAX_USER_BYTES = 255
const MAX_TOKEN = 8192
/** RFC 6750 §2.1 b64token. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/
const KEY = /^[A-Za-z]+$/
const VALUE = /^[\x21-\x7e \t\r\n]*$/

/** `key=value` pairs separated by ^A, ending with ^A^A (RFC 7628 §3.1 kvpairs). */
function kvpairs(text: string): Map<string, string> | undefined {
  if (!text.endsWith('\x01\x01')) return undefined
  const pairs = new Map<string, string>()
  for (const pair of text.slice(0, -2).split('\x01')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const key = pair.slice(0, eq)
    const value = pair.slice(eq + 1)
    if (eq <= 0 || !KEY.test(key) || !VALUE.test(value) || pairs.has(key)) return undefined
    pairs.set(key, value)
  }
  return pairs
}

function bearer(pairs: Map<string, string>): string | undefined {
  const m = /^Bearer +(\S+)$/i.exec(pairs.get('auth') ?? '')
  const token = m?.[1]
  return token !== undefined && token.length <= MAX_TOKEN && B64TOKEN.test(token) ? token : undefined
}

function utf8User(text: string): string | undefined {
  const user = Buffer.from(text, 'latin1').toString('utf8')
  if (/\p{Cc}/u.test(user) || Buffer.byteLength(user) > MAX_USER_BYTES) return undefined
  return user
}

/**
 * OAUTHBEARER's client response: `n,a=user,` (or `n,,`), ^A, `auth=Bearer TOKEN`, `host=`,
 * `port=`, ^A^A. Channel binding (`p=`, `y`) is not part of OAUTHBEARER and is refused.
 */
export function parseOauthBearer(buf: Buffer): BearerMessage | undefined {
  const text = buf.toString('latin1')
  const m = /^n,(?:a=([^,\x01]*))?,\x01(.*)$/s.exec(text)
  if (m === null) return undefined
  const user = utf8User((m[1] ?? '').replaceAll('=2C', ',').replaceAll('=3D', '='))
  const pairs = kvpairs(`\x01${m[2] ?? ''}`)
  if (user === undefined || pairs === undefined) return undefined
  const token = bearer(pairs)
  if (token === undefined) return undefined
  const portText = pairs.get('port')
  const port = portText !== undefined && /^\d{1,5}$/.test(portText) ? Number(portText) : undefined
  return { user, token, host: pairs.get('host'), port }
}

/** XOAUTH2's client response: `user=USER` ^A `auth=Bearer TOKEN` ^A^A. */
export function parseXoauth2(buf: Buffer): BearerMessage | undefined {
  const pairs = kvpairs(buf.toString('latin1'))
  if (pairs === undefined) return undefined
  const user = utf8User(pairs.get('user') ?? '')
  const token = bearer(pairs)
  if (user === undefined || user === '' || token === undefined) return undefined
  return { user, token, host: undefined, port: undefined }
}

/** The JSON a server sends with a failed token (RFC 7628 §3.2.2), as the challenge before its 535. */
export function oauthErrorStatus(scope?: string): string {
  return JSON.stringify({ status: 'invalid_token', schemes: 'bearer', ...(scope === undefined ? {} : { scope }) })
}
