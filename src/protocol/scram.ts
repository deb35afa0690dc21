/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) messages and keys, and SCRAM-SHA-256-PLUS's tls-exporter
 * channel binding (RFC 9266): parsing the client's messages, formatting the server's, deriving
 * and checking keys, and the stored forms `{SCRAM-SHA-256}iter,salt,StoredKey,ServerKey`
 * (Dovecot, `doveadm pw -s SCRAM-SHA-256`, `gsasl --mkpasswd`) and RFC 5803's
 * `SCRAM-SHA-256$iter:salt$StoredKey:ServerKey`.
 * Pure: no session, no policy. Parsers return undefined for anything malformed and never throw.
 * Security: proofs are compared in constant time; field lengths are capped.
 */
import crypto from 'node:crypto'

export interface ScramKeys {
  readonly iterations: number
  readonly salt: Buffer
  readonly storedKey: Buffer
  readonly serverKey: Buffer
}

export type ChannelBindingFlag =
  /** The client does not support channel binding. */
  | { readonly flag: 'n' }
  /** It does, but thinks the server does not (a downgrade if the server offered -PLUS). */
  | { readonly flag: 'y' }
  /** It binds to the channel with this type (tls-exporter). */
  | { readonly flag: 'p'; readonly type: string }

export interface ClientFirst {
  readonly binding: ChannelBindingFlag
  /** The authorization identity (`a=`), decoded; empty when absent. */
  readonly authzid: string
  /** The GS2 header as sent (`n,,`): part of the channel binding data in client-final. */
  readonly gs2Header: string
  /** client-first-message-bare, as sent: part of AuthMessage. */
  readonly bare: string
  /** The authentication identity (`n=`), decoded. */
  readonly user: string
  readonly nonce: string
}

export interface ClientFinal {
  /** The `c=` attribute, decoded: the GS2 header and, with `p`, the channel binding data. */
  readonly channelBinding: Buffer
  readonly nonce: string
  readonly proof: Buffer
  /** client-final-message-without-proof, as sent: part of AuthMessage. */
  readonly withoutProof: string
}

/** The cap on iterations anyone can make the server compute (stored entries, PLAIN checks). */
export const MAX_SCRAM_ITERATIONS = 1_000_000
const MAX_NAME_BYTES = 255
const MAX_NONCE = 256
const HASH = 'sha256'
const KEY_BYTES = 32

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
/** RFC 5802 §7 `printable` minus `,`. */
const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/
const CB_NAME = /^[A-Za-z0-9.-]+$/

function base64(text: string): Buffer | undefined {
  return BASE64.test(text) ? Buffer.from(text, 'base64') : undefined
}

/** RFC 5802 §5.1 saslname: `=2C` is `,` and `=3D` is `=`; any other `=`, a `,` or a control character is malformed. */
function saslName(text: string): string | undefined {
  if (/[,\p{Cc}]/u.test(text) || /=(?!2C|3D)/.test(text)) return undefined
  const name = text.replaceAll('=2C', ',').replaceAll('=3D', '=')
  return Buffer.byteLength(name) <= MAX_NAME_BYTES ? name : undefined
}

function utf8(buf: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf)
  } catch {
    return undefined
  }
}

/**
 * `gs2-header client-first-message-bare`: `n,,n=user,r=nonce` (RFC 5802 §7). A mandatory
 * extension (`m=`) is refused, as the RFC requires of a server that knows none.
 */
export function parseClientFirst(buf: Buffer): ClientFirst | undefined {
  const text = utf8(buf)
  if (text === undefined) return undefined
  const m = /^(n|y|p=([^,]*)),(a=([^,]*))?,(.*)$/s.exec(text)
  if (m === null) return undefined
  const [, flag = '', cbName, hasAuthzid, authzidText = '', bare = ''] = m
  let binding: ChannelBindingFlag
  if (flag === 'n' || flag === 'y') binding = { flag }
  else if (cbName !== undefined && CB_NAME.test(cbName)) binding = { flag: 'p', type: cbName }
  else return undefined
  const authzid = hasAuthzid === undefined ? '' : saslName(authzidText)
  if (authzid === undefined || (hasAuthzid !== undefined && authzid === '')) return undefined
  const attrs = /^n=([^,]*),r=([^,]*)(?:,[a-zA-Z]=[^,]*)*$/.exec(bare)
  if (attrs === null) return undefined
  const user = saslName(attrs[1] ?? '')
  const nonce = attrs[2] ?? ''
  if (user === undefined || user === '' || !NONCE.test(nonce) || nonce.length > MAX_NONCE) return undefined
  return { binding, authzid, gs2Header: text.slice(0, text.length - bare.length), bare, user, nonce }
}

/** `r=nonce,s=salt,i=iterations` (RFC 5802 §7 server-first-message). */
export function serverFirst(nonce: string, salt: Buffer, iterations: number): string {
  return `r=${nonce},s=${salt.toString('base64')},i=${iterations}`
}

/** `c=binding,r=nonce[,extensions],p=proof` (RFC 5802 §7 client-final-message). */
export function parseClientFinal(buf: Buffer): ClientFinal | undefined {
  const text = utf8(buf)
  if (text === undefined) return undefined
  const m = /^(c=([^,]*),r=([^,]*)(?:,[a-oq-zA-Z]=[^,]*)*),p=([^,]*)$/.exec(text)
  if (m === null) return undefined
  const [, withoutProof = '', cb = '', nonce = '', proofText = ''] = m
  const channelBinding = base64(cb)
  const proof = base64(proofText)
  if (channelBinding === undefined || proof === undefined || proof.length !== KEY_BYTES) return undefined
  if (!NONCE.test(nonce) || nonce.length > 2 * MAX_NONCE) return undefined
  return { channelBinding, nonce, proof, withoutProof }
}

/** AuthMessage (RFC 5802 §3): what both proofs sign. */
export function authMessage(first: ClientFirst, serverFirstMessage: string, final: ClientFinal): string {
  return `${first.bare},${serverFirstMessage},${final.withoutProof}`
}

const hmac = (key: Buffer, data: string | Buffer) => crypto.createHmac(HASH, key).update(data).digest()

/** StoredKey and ServerKey from SaltedPassword (RFC 5802 §3). */
export function keysFromSaltedPassword(salted: Buffer, salt: Buffer, iterations: number): ScramKeys {
  const clientKey = hmac(salted, 'Client Key')
  return { iterations, salt, storedKey: crypto.hash(HASH, clientKey, 'buffer'), serverKey: hmac(salted, 'Server Key') }
}

/**
 * The keys a password gives with this salt and iteration count: PBKDF2-HMAC-SHA-256 in the
 * thread pool. The password is normalized first (saslPrep).
 */
export async function deriveScramKeys(password: string, salt: Buffer, iterations: number): Promise<ScramKeys> {
  const salted = await new Promise<Buffer>((resolve, reject) =>
    crypto.pbkdf2(saslPrep(password), salt, iterations, KEY_BYTES, HASH, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  )
  return keysFromSaltedPassword(salted, salt, iterations)
}

/** Whether the client's proof is right: H(proof XOR HMAC(StoredKey, AuthMessage)) = StoredKey. */
export function verifyClientProof(keys: ScramKeys, message: string, proof: Buffer): boolean {
  const signature = hmac(keys.storedKey, message)
  if (proof.length !== signature.length) return false
  const clientKey = Buffer.alloc(signature.length)
  for (let i = 0; i < signature.length; i++) clientKey[i] = (proof[i] ?? 0) ^ (signature[i] ?? 0)
  const got = crypto.hash(HASH, clientKey, 'buffer')
  return got.length === keys.storedKey.length && crypto.timingSafeEqual(got, keys.storedKey)
}

/** `v=ServerSignature` (RFC 5802 §7 server-final-message). */
export function serverFinal(keys: ScramKeys, message: string): string {
  return `v=${hmac(keys.serverKey, message).toString('base64')}`
}

/** Whether keys are usable for SCRAM-SHA-256: sizes, and iterations within the cap. */
export function validKeys(k: ScramKeys): boolean {
  return (
    Buffer.isBuffer(k.salt) &&
    k.salt.length > 0 &&
    Buffer.isBuffer(k.storedKey) &&
    k.storedKey.length === KEY_BYTES &&
    Buffer.isBuffer(k.serverKey) &&
    k.serverKey.length === KEY_BYTES &&
    Number.isInteger(k.iterations) &&
    k.iterations >= 1 &&
    k.iterations <= MAX_SCRAM_ITERATIONS
  )
}

/**
 * A stored SCRAM-SHA-256 entry: Dovecot's `{SCRAM-SHA-256}iter,salt,stored,server` (the scheme
 * prefix optional; gsasl appends `,salted-password`, which is ignored) or RFC 5803's
 * `SCRAM-SHA-256$iter:salt$stored:server`; undefined for anything else.
 *
 * @example
 * parseScramSecret('{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=')
 */
export function parseScramSecret(text: string): ScramKeys | undefined {
  const dovecot = /^(?:\{SCRAM-SHA-256\})?(\d{1,7}),([^,]+),([^,]+),([^,]+)(?:,[^,]+)?$/i.exec(text)
  const rfc5803 = /^SCRAM-SHA-256\$(\d{1,7}):([^$:]+)\$([^$:]+):([^$:]+)$/i.exec(text)
  const m = dovecot ?? rfc5803
  if (m === null) return undefined
  const salt = base64(m[2] ?? '')
  const storedKey = base64(m[3] ?? '')
  const serverKey = base64(m[4] ?? '')
  if (salt === undefined || storedKey === undefined || serverKey === undefined) return undefined
  const keys = { iterations: Number(m[1]), salt, storedKey, serverKey }
  return validKeys(keys) ? keys : undefined
}

/** Dovecot's form of stored keys, which parseScramSecret reads. */
export function formatScramSecret(k: ScramKeys): string {
  const b = (x: Buffer) => x.toString('base64')
  return `{SCRAM-SHA-256}${k.iterations},${b(k.salt)},${b(k.storedKey)},${b(k.serverKey)}`
}

/**
 * SASLprep (RFC 4013) as SCRAM clients apply it to passwords: non-ASCII spaces become SPACE,
 * characters "commonly mapped to nothing" (RFC 3454 B.1) go, then NFKC. The prohibited-output
 * and bidirectional checks are left out: a password that fails them cannot match anyway.
 */
export function saslPrep(s: string): string {
  if (/^[\x20-\x7e]*$/.test(s)) return s
  let out = ''
  for (const c of s) {
    const code = c.codePointAt(0) ?? 0
    if (nonAsciiSpace(code)) out += ' '
    else if (!mappedToNothing(code)) out += c
  }
  return out.normalize('NFKC')
}

/** RFC 3454 C.1.2. */
const nonAsciiSpace = (c: number) =>
  c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200b) || c === 0x202f || c === 0x205f || c === 0x3000

/** RFC 3454 B.1 (soft hyphen, joiners, variation selectors, ...). */
const mappedToNothing = (c: number) =>
  c === 0xad ||
  c === 0x34f ||
  c === 0x1806 ||
  (c >= 0x180b && c <= 0x180d) ||
  c === 0x200c ||
  c === 0x200d ||
  c === 0x2060 ||
  (c >= 0xfe00 && c <= 0xfe0f) ||
  c === 0xfeff
