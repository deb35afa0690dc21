/**
 * A SCRAM-SHA-256(-PLUS) client for tests (RFC 5802, RFC 7677, RFC 9266), written from the RFCs
 * apart from the server's code, so a test of an `authScram` backend checks the exchange end to
 * end: `await scramLogin(client, { user: 'alice', password: 'pencil' })` returns the final reply.
 * Options make it misbehave the ways a test needs (a downgrade flag, another channel, a wrong proof).
 */
import crypto from 'node:crypto'
import type { SmtpReply, SmtpTestClient } from './client.ts'

export interface ScramLoginOptions {
  readonly user: string
  readonly password: string
  /** Default: SCRAM-SHA-256-PLUS over TLS, SCRAM-SHA-256 otherwise. */
  readonly mechanism?: 'SCRAM-SHA-256' | 'SCRAM-SHA-256-PLUS'
  /** The GS2 channel binding flag (default: `p` for -PLUS, `n` otherwise). */
  readonly flag?: 'n' | 'y' | 'p'
  readonly authzid?: string
  /** Send the client-first message with AUTH (default) or after an empty 334. */
  readonly initialResponse?: boolean
  /** Binding data to claim instead of this connection's tls-exporter data. */
  readonly bindingData?: Buffer
  readonly clientNonce?: string
}

export interface ScramLoginResult {
  /** The final reply (235, 535, 454, ...). */
  readonly reply: SmtpReply
  /** The server-first message, when the server sent one. */
  readonly serverFirst: { readonly salt: string; readonly iterations: number; readonly nonce: string } | undefined
  /** Whether the server proved it holds the user's ServerKey (its v= matched). */
  readonly serverVerified: boolean
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64')
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8')
const name = (s: string) => s.replaceAll('=', '=3D').replaceAll(',', '=2C')
const hmac = (key: Buffer, text: string) => crypto.createHmac('sha256', key).update(text).digest()

export async function scramLogin(c: SmtpTestClient, o: ScramLoginOptions): Promise<ScramLoginResult> {
  const exporter = c.tlsExporter('EXPORTER-Channel-Binding', 32)
  const mechanism = o.mechanism ?? (exporter !== undefined ? 'SCRAM-SHA-256-PLUS' : 'SCRAM-SHA-256')
  const flag = o.flag ?? (mechanism === 'SCRAM-SHA-256-PLUS' ? 'p' : 'n')
  const gs2 = `${flag === 'p' ? 'p=tls-exporter' : flag},${o.authzid === undefined ? '' : `a=${name(o.authzid)}`},`
  const cnonce = o.clientNonce ?? crypto.randomBytes(18).toString('base64')
  const bare = `n=${name(o.user)},r=${cnonce}`
  let r: SmtpReply | undefined
  if (o.initialResponse === false) {
    r = await c.send(`AUTH ${mechanism}`, /^\d{3} /)
    if (r?.code !== 334) return { reply: r as SmtpReply, serverFirst: undefined, serverVerified: false }
    r = await c.send(b64(gs2 + bare), /^\d{3} /)
  } else r = await c.send(`AUTH ${mechanism} ${b64(gs2 + bare)}`, /^\d{3} /)
  if (r?.code !== 334) return { reply: r as SmtpReply, serverFirst: undefined, serverVerified: false }
  const first = unb64(r.text)
  const m = /^r=([^,]+),s=([^,]+),i=(\d+)/.exec(first)
  if (m === null) throw new Error(`not a server-first message: ${first}`)
  const [, nonce = '', salt = '', iterText = ''] = m
  const iterations = Number(iterText)
  const serverFirst = { salt, iterations, nonce }
  const cbData = flag === 'p' ? (o.bindingData ?? exporter ?? Buffer.alloc(0)) : Buffer.alloc(0)
  const withoutProof = `c=${b64(Buffer.concat([Buffer.from(gs2), cbData]))},r=${nonce}`
  const salted = crypto.pbkdf2Sync(o.password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, 32, 'sha256')
  const clientKey = hmac(salted, 'Client Key')
  const storedKey = crypto.createHash('sha256').update(clientKey).digest()
  const message = `${bare},${first},${withoutProof}`
  const signature = hmac(storedKey, message)
  const proof = Buffer.from(clientKey.map((byte, i) => byte ^ (signature[i] ?? 0)))
  r = await c.send(b64(`${withoutProof},p=${b64(proof)}`), /^\d{3} /)
  if (r?.code !== 334) return { reply: r as SmtpReply, serverFirst, serverVerified: false }
  const expected = `v=${b64(hmac(hmac(salted, 'Server Key'), message))}`
  const serverVerified = unb64(r.text) === expected
  // RFC 4954 §4: the server's success data is answered with an empty response.
  return { reply: (await c.send('', /^\d{3} /)) as SmtpReply, serverFirst, serverVerified }
}
