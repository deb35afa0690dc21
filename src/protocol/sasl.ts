/**
 * SASL decoders for SMTP AUTH (RFC 4954): strict base64, PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195).
 *
 * Pure functions: no session state, no policy, no password checks. Every decoder returns
 * undefined for anything malformed and never throws, whatever the bytes.
 * Security: inputs are attacker-controlled. Base64 must be canonical (Exim CVE-2018-6789 was a
 * base64 length bug); fields are length-capped and refuse CR/LF/NUL so they cannot reach logs or
 * backends as injected lines; empty passwords are refused (an empty LDAP bind is anonymous and succeeds).
 */
import crypto from 'node:crypto'

export interface PlainCredentials {
  readonly authzid: string
  readonly authcid: string
  readonly password: string
}

export interface CramResponse {
  readonly user: string
  readonly digest: string
}

export const MAX_AUTHCID_BYTES = 255
export const MAX_PASSWORD_BYTES = 1024
export const MAX_LOGIN_FIELD_BYTES = 1024
/** What to log instead of a SASL response line. */
export const MASKED = '****'

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const CONTROL = /\p{Cc}/u
const CR_LF = /[\r\n]/
const CRAM_DIGEST = /^[0-9a-f]{32}$/
const HOSTNAME = /^[A-Za-z0-9._:[\]-]{1,255}$/

/**
 * Decodes canonical base64 (RFC 4648 §4, padded, no whitespace, zero pad bits); undefined otherwise.
 * A lone `=` is the empty response of RFC 4954 §4, as is the empty string.
 *
 * @example
 * decodeBase64Strict('AHVzZXIAcGFzcw==') // <Buffer 00 75 73 65 72 00 70 61 73 73>
 * decodeBase64Strict('AHVzZXIAcGFzcw')   // undefined: missing padding
 */
export function decodeBase64Strict(s: string): Buffer | undefined {
  if (s === '=' || s === '') return Buffer.alloc(0)
  if (s.length % 4 !== 0 || !BASE64.test(s)) return undefined
  // Non-canonical encodings (e.g. `QR==` for `QQ==`) carry bits that are silently dropped.
  if (s.endsWith('==')) {
    if ((B64_ALPHABET.indexOf(s.charAt(s.length - 3)) & 0x0f) !== 0) return undefined
  } else if (s.endsWith('=')) {
    if ((B64_ALPHABET.indexOf(s.charAt(s.length - 2)) & 0x03) !== 0) return undefined
  }
  return Buffer.from(s, 'base64')
}

function utf8(buf: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf)
  } catch {
    return undefined
  }
}

/**
 * RFC 4616 `[authzid] NUL authcid NUL passwd`: exactly two NULs, valid UTF-8, non-empty authcid
 * (≤255 bytes, no control characters) and password (≤1024 bytes, no CR/LF).
 */
export function parsePlain(buf: Buffer): PlainCredentials | undefined {
  if (buf.length > 2 * MAX_AUTHCID_BYTES + MAX_PASSWORD_BYTES + 2) return undefined
  const a = buf.indexOf(0)
  const b = a < 0 ? -1 : buf.indexOf(0, a + 1)
  if (b < 0 || buf.indexOf(0, b + 1) >= 0) return undefined
  const zid = buf.subarray(0, a)
  const cid = buf.subarray(a + 1, b)
  const pw = buf.subarray(b + 1)
  if (zid.length > MAX_AUTHCID_BYTES || cid.length === 0 || cid.length > MAX_AUTHCID_BYTES) return undefined
  if (pw.length === 0 || pw.length > MAX_PASSWORD_BYTES) return undefined
  const authzid = utf8(zid)
  const authcid = utf8(cid)
  const password = utf8(pw)
  if (authzid === undefined || authcid === undefined || password === undefined) return undefined
  if (CONTROL.test(authzid) || CONTROL.test(authcid) || CR_LF.test(password)) return undefined
  return { authzid, authcid, password }
}

/** A LOGIN username or password: non-empty, ≤1024 bytes, valid UTF-8, no control characters. */
export function parseLoginField(buf: Buffer): string | undefined {
  if (buf.length === 0 || buf.length > MAX_LOGIN_FIELD_BYTES) return undefined
  const s = utf8(buf)
  return s === undefined || CONTROL.test(s) ? undefined : s
}

/**
 * An RFC 2195 challenge `<random.timestamp@hostname>` (not yet base64). The random part comes from
 * the CSPRNG: a guessable challenge lets a recorded response be replayed (smtp-server 3.19.0 fix).
 * Throws RangeError for a hostname that could break the challenge (a configuration bug).
 */
export function cramChallenge(hostname: string): string {
  if (!HOSTNAME.test(hostname)) throw new RangeError(`cramChallenge: bad hostname ${JSON.stringify(hostname)}`)
  return `<${crypto.randomBytes(16).toString('hex')}.${Date.now()}@${hostname}>`
}

/** `user SP digest` with the digest as 32 lowercase hex digits; the user is everything before the last space. */
export function parseCramResponse(buf: Buffer): CramResponse | undefined {
  if (buf.length > MAX_AUTHCID_BYTES + 33) return undefined
  const s = utf8(buf)
  if (s === undefined) return undefined
  const sp = s.lastIndexOf(' ')
  if (sp <= 0) return undefined
  const user = s.slice(0, sp)
  const digest = s.slice(sp + 1)
  if (!CRAM_DIGEST.test(digest) || CONTROL.test(user) || Buffer.byteLength(user) > MAX_AUTHCID_BYTES) return undefined
  return { user, digest }
}

/** HMAC-MD5(secret, challenge) as lowercase hex (RFC 2195 §2). */
export function cramDigest(secret: string, challenge: string): string {
  return crypto.createHmac('md5', secret).update(challenge).digest('hex')
}

/** Compares a client's CRAM-MD5 digest to the expected one in constant time. */
export function cramVerify(secret: string, challenge: string, digest: string): boolean {
  const want = Buffer.from(cramDigest(secret, challenge), 'latin1')
  const got = Buffer.from(digest, 'latin1')
  return got.length === want.length && crypto.timingSafeEqual(got, want)
}

/**
 * Hides the initial response of an `AUTH <mech> <response>` line for logging; other lines are returned
 * unchanged. Lines sent during a SASL exchange (responses to 334) are all secret: log MASKED instead.
 *
 * @example
 * maskCredentials('AUTH PLAIN AHVzZXIAcGFzcw==') // 'AUTH PLAIN ****'
 */
export function maskCredentials(line: string): string {
  const words = line.trim().split(/[ \t]+/)
  const [verb, mech] = words
  if (verb?.toUpperCase() !== 'AUTH' || words.length < 3 || mech === undefined) return line
  return `${verb} ${mech} ${MASKED}`
}
