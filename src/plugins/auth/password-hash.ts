/**
 * Password verification for stored credentials: qpsmtpd flat_auth_pw cleartext, Dovecot-style
 * `{SCHEME}` prefixes ({PLAIN}, {CRYPT}, {SHA256-CRYPT}, {SHA512-CRYPT}, {SHA}, {SHA256}, {SHA512},
 * {SSHA}, {SSHA256}, {SSHA512}, {SCRYPT}, {SCRAM-SHA-256}), and bare `$5$`/`$6$` (SHA-crypt, Drepper 2008) and
 * `$scrypt$ln=…,r=…,p=…$salt$hash` (passlib/PHC style).
 * A stored value that looks like `{X}…` or `$id$…` is never compared as cleartext, even when the
 * scheme is unknown (else the hash itself would be a valid password); store `{PLAIN}$x$` to mean it.
 * Security: comparisons use crypto.timingSafeEqual; malformed input returns false and never throws;
 * SHA-crypt rounds are capped and yield to the event loop; scrypt runs in the thread pool with capped memory.
 */
import crypto from 'node:crypto'
import { deriveScramKeys, parseScramSecret } from '../../protocol/scram.ts'

/** Cost caps for stored hashes (operator data, but a typo must not stall the server). */
export const MAX_SHA_CRYPT_ROUNDS = 2_000_000
const SCRYPT_MAXMEM = 256 * 1024 * 1024

const SCHEME = /^\{([A-Za-z0-9._-]+)\}/
const CRYPT_ID = /^\$[A-Za-z0-9-]+\$/
const CLEARTEXT_SCHEMES = new Set(['PLAIN', 'CLEAR', 'CLEARTEXT'])
const DIGESTS = { SHA: 'sha1', SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' } as const
const SALTED = { SSHA: 'sha1', SSHA256: 'sha256', SSHA512: 'sha512' } as const

/**
 * Whether `given` matches the stored credential. Unknown schemes and malformed values give false.
 *
 * @example
 * await verifyPassword('{SHA256-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5', 'Hello world!') // true
 */
export async function verifyPassword(stored: string, given: string): Promise<boolean> {
  try {
    if (stored === '' || given === '') return false
    const m = SCHEME.exec(stored)
    if (m?.[1] === undefined) return CRYPT_ID.test(stored) ? await verifyCrypt(stored, given) : equalText(stored, given)
    return await verifyScheme(m[1].toUpperCase(), stored.slice(m[0].length), given)
  } catch {
    return false
  }
}

/** The cleartext a CRAM-MD5 check needs, when the stored form is cleartext; undefined for hashes. */
export function storedCramSecret(stored: string): string | undefined {
  const m = SCHEME.exec(stored)
  if (m?.[1] === undefined) return stored === '' || CRYPT_ID.test(stored) ? undefined : stored
  const rest = stored.slice(m[0].length)
  return CLEARTEXT_SCHEMES.has(m[1].toUpperCase()) && rest !== '' ? rest : undefined
}

async function verifyScheme(scheme: string, rest: string, given: string): Promise<boolean> {
  if (CLEARTEXT_SCHEMES.has(scheme)) return rest !== '' && equalText(rest, given)
  if (scheme === 'CRYPT') return verifyCrypt(rest, given)
  if (scheme === 'SHA256-CRYPT') return rest.startsWith('$5$') && verifyCrypt(rest, given)
  if (scheme === 'SHA512-CRYPT') return rest.startsWith('$6$') && verifyCrypt(rest, given)
  if (scheme === 'SCRYPT') return rest.startsWith('$scrypt$') && verifyScrypt(rest, given)
  if (scheme === 'SCRAM-SHA-256') return verifyScram(rest, given)
  const [name, enc] = scheme.split('.', 2) as [string, string | undefined]
  if (enc !== undefined && enc !== 'HEX' && enc !== 'B64') return false
  if (Object.hasOwn(DIGESTS, name)) {
    const alg = DIGESTS[name as keyof typeof DIGESTS]
    const want = decodeDigest(rest, enc, crypto.hash(alg, '', 'buffer').length)
    return want !== undefined && equalBytes(crypto.hash(alg, Buffer.from(given, 'utf8'), 'buffer'), want)
  }
  if (Object.hasOwn(SALTED, name)) {
    const alg = SALTED[name as keyof typeof SALTED]
    const len = crypto.hash(alg, '', 'buffer').length
    const raw = decodeDigest(rest, enc, undefined)
    if (raw === undefined || raw.length <= len) return false
    const salt = raw.subarray(len)
    const got = crypto.hash(alg, Buffer.concat([Buffer.from(given, 'utf8'), salt]), 'buffer')
    return equalBytes(got, raw.subarray(0, len))
  }
  return false
}

/** Base64 by default; hex with `.HEX`, or without a suffix when the length is exactly a hex digest. */
function decodeDigest(text: string, enc: string | undefined, digestLen: number | undefined): Buffer | undefined {
  const isHex = /^(?:[0-9a-fA-F]{2})+$/.test(text)
  if (enc === 'HEX' || (enc === undefined && isHex && digestLen !== undefined && text.length === digestLen * 2)) {
    return isHex ? Buffer.from(text, 'hex') : undefined
  }
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return undefined
  const buf = Buffer.from(text, 'base64')
  return digestLen === undefined || buf.length === digestLen ? buf : undefined
}

function equalBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b)
}

/** Compares strings of any length in constant time by comparing their SHA-256 digests. */
function equalText(a: string, b: string): boolean {
  return crypto.timingSafeEqual(crypto.hash('sha256', a, 'buffer'), crypto.hash('sha256', b, 'buffer'))
}

async function verifyCrypt(stored: string, given: string): Promise<boolean> {
  if (stored.startsWith('$5$') || stored.startsWith('$6$')) {
    const parsed = parseShaCrypt(stored)
    if (parsed === undefined || parsed.rounds > MAX_SHA_CRYPT_ROUNDS) return false
    const got = await shaCrypt(parsed.alg, Buffer.from(given, 'utf8'), parsed.salt, parsed.rounds)
    return equalBytes(Buffer.from(got, 'latin1'), Buffer.from(parsed.hash, 'latin1'))
  }
  if (stored.startsWith('$scrypt$')) return verifyScrypt(stored, given)
  return false // $1$, $2y$, $y$, $argon2id$, $7$, …: not supported
}

// ---- SHA-crypt (https://www.akkadia.org/drepper/SHA-crypt.txt) -------------------------------

interface ShaCryptParams {
  readonly alg: 'sha256' | 'sha512'
  readonly salt: Buffer
  readonly rounds: number
  readonly hash: string
}

const ROUNDS_DEFAULT = 5000
const ROUNDS_MIN = 1000
const ROUNDS_MAX = 999_999_999
const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

function parseShaCrypt(stored: string): ShaCryptParams | undefined {
  const alg = stored.startsWith('$5$') ? 'sha256' : 'sha512'
  let rest = stored.slice(3)
  let rounds = ROUNDS_DEFAULT
  const r = /^rounds=(\d{1,10})\$/.exec(rest)
  if (r?.[1] !== undefined) {
    rounds = Math.max(ROUNDS_MIN, Math.min(ROUNDS_MAX, Number(r[1])))
    rest = rest.slice(r[0].length)
  }
  const dollar = rest.indexOf('$')
  if (dollar < 0) return undefined
  const hash = rest.slice(dollar + 1)
  const hashLen = alg === 'sha256' ? 43 : 86
  if (hash.length !== hashLen || ![...hash].every((c) => ITOA64.includes(c))) return undefined
  return { alg, salt: Buffer.from(rest.slice(0, dollar), 'utf8').subarray(0, 16), rounds, hash }
}

const ORDER_256 = [
  [0, 10, 20],
  [21, 1, 11],
  [12, 22, 2],
  [3, 13, 23],
  [24, 4, 14],
  [15, 25, 5],
  [6, 16, 26],
  [27, 7, 17],
  [18, 28, 8],
  [9, 19, 29],
] as const
const ORDER_512 = [
  [0, 21, 42],
  [22, 43, 1],
  [44, 2, 23],
  [3, 24, 45],
  [25, 46, 4],
  [47, 5, 26],
  [6, 27, 48],
  [28, 49, 7],
  [50, 8, 29],
  [9, 30, 51],
  [31, 52, 10],
  [53, 11, 32],
  [12, 33, 54],
  [34, 55, 13],
  [56, 14, 35],
  [15, 36, 57],
  [37, 58, 16],
  [59, 17, 38],
  [18, 39, 60],
  [40, 61, 19],
  [62, 20, 41],
] as const

/** The encoded hash part of a SHA-crypt string (without `$5$salt$`). Yields every 4096 rounds. */
export async function shaCrypt(alg: 'sha256' | 'sha512', key: Buffer, salt: Buffer, rounds: number): Promise<string> {
  const H = (...parts: Buffer[]) => crypto.hash(alg, Buffer.concat(parts), 'buffer')
  const hl = alg === 'sha256' ? 32 : 64
  const b = H(key, salt, key)
  const a: Buffer[] = [key, salt]
  let n = key.length
  for (; n > hl; n -= hl) a.push(b)
  a.push(b.subarray(0, n))
  for (let k = key.length; k > 0; k >>= 1) a.push(k & 1 ? b : key)
  const A = H(...a)
  const repeat = (d: Buffer, len: number) => Buffer.concat(Array<Buffer>(Math.ceil(len / hl)).fill(d)).subarray(0, len)
  const P = repeat(H(...Array<Buffer>(key.length).fill(key)), key.length)
  const S = repeat(H(...Array<Buffer>(16 + (A[0] ?? 0)).fill(salt)), salt.length)
  let C = A
  for (let i = 0; i < rounds; i++) {
    const parts: Buffer[] = [i & 1 ? P : C]
    if (i % 3 !== 0) parts.push(S)
    if (i % 7 !== 0) parts.push(P)
    parts.push(i & 1 ? C : P)
    C = H(...parts)
    if ((i & 4095) === 4095) await new Promise<void>((resolve) => setImmediate(resolve))
  }
  const out: string[] = []
  const put = (b2: number, b1: number, b0: number, chars: number) => {
    let w = (b2 << 16) | (b1 << 8) | b0
    for (let j = 0; j < chars; j++, w >>= 6) out.push(ITOA64[w & 0x3f] ?? '')
  }
  const at = (i: number) => C[i] ?? 0
  for (const [x, y, z] of alg === 'sha256' ? ORDER_256 : ORDER_512) put(at(x), at(y), at(z), 4)
  if (alg === 'sha256') put(0, at(31), at(30), 3)
  else put(0, 0, at(63), 2)
  return out.join('')
}

// ---- scrypt ($scrypt$ln=14,r=8,p=1$<salt>$<hash>, base64 or passlib's ab64, padding optional) ------

async function verifyScrypt(stored: string, given: string): Promise<boolean> {
  const m =
    /^\$scrypt\$((?:ln|N)=\d{1,8}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/.]*={0,2})\$([A-Za-z0-9+/.]+={0,2})$/.exec(
      stored,
    )
  if (m?.[1] === undefined || m[2] === undefined || m[3] === undefined || m[4] === undefined || m[5] === undefined)
    return false
  const [k, v] = m[1].split('=') as [string, string]
  const N = k === 'ln' ? 2 ** Number(v) : Number(v)
  const r = Number(m[2])
  const p = Number(m[3])
  if (!Number.isInteger(N) || N < 2 || N > 2 ** 20 || (N & (N - 1)) !== 0 || r < 1 || p < 1 || p > 16) return false
  if (128 * N * r + 128 * r * p > SCRYPT_MAXMEM) return false
  const ab64 = (s: string) => Buffer.from(s.replaceAll('.', '+'), 'base64')
  const salt = ab64(m[4])
  const want = ab64(m[5])
  if (want.length < 16 || want.length > 128) return false
  const got = await new Promise<Buffer>((resolve, reject) =>
    crypto.scrypt(given, salt, want.length, { N, r, p, maxmem: SCRYPT_MAXMEM }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  )
  return equalBytes(got, want)
}

// ---- SCRAM-SHA-256 ({SCRAM-SHA-256}iter,salt,StoredKey,ServerKey: Dovecot, gsasl --mkpasswd) ----

/** A PLAIN or LOGIN password against stored SCRAM keys: the StoredKey it gives must match. */
async function verifyScram(rest: string, given: string): Promise<boolean> {
  const stored = parseScramSecret(rest)
  if (stored === undefined) return false
  const got = await deriveScramKeys(given, stored.salt, stored.iterations)
  return equalBytes(got.storedKey, stored.storedKey)
}
