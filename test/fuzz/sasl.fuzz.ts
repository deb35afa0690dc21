/**
 * Fuzzes the SASL decoders and verifyPassword with random and mutated input: nothing may throw,
 * and decoders must keep their contracts (canonical base64 round-trips, field limits hold).
 * Run: `node test/fuzz/sasl.fuzz.ts [seconds]` (default 3). Exits 1 on the first failure.
 */
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { verifyPassword } from '../../src/plugins/auth/password-hash.ts'
import {
  decodeBase64Strict,
  MAX_AUTHCID_BYTES,
  MAX_LOGIN_FIELD_BYTES,
  MAX_PASSWORD_BYTES,
  parseCramResponse,
  parseLoginField,
  parsePlain,
} from '../../src/protocol/sasl.ts'

const SEEDS_B64 = ['=', '', 'AHVzZXIAcGFzcw==', 'dGVzdA==', 'YWI=', 'YWJj', 'YR==', '*', '!!!!']
const SEEDS_STORED = [
  'secret',
  '{PLAIN}secret',
  '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=',
  '{SSHA256}uXWi0HNA5T6ZxOwTcHNhtFKbnhMceeAh019uPM5AfIBOYUNsMTIzNA==',
  '{SHA256.HEX}5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8',
  '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5',
  '$6$rounds=1000$x$uX48BhvLIiqtLJxgjmj0aCDE2ckCs850sh6d0uVdB59N8TkchCTMMv2ZVkr61saDIP7qRT.5kOqzq61pRJVBV/',
  '$scrypt$ln=4,r=8,p=1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI',
  '{CRYPT}$6$saltstring$',
]
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=$.{}:\0\r\n -_,'

const rnd = (n: number) => crypto.randomInt(n)
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)] as T

function randomString(): string {
  const len = pick([0, 1, 2, 3, 4, 5, 7, 8, 16, 43, 86, 255, 256, 1024, 1025, 2000])
  switch (rnd(4)) {
    case 0:
      return Array.from({ length: len }, () => ALPHABET[rnd(ALPHABET.length)]).join('')
    case 1:
      return crypto.randomBytes(len).toString('latin1')
    case 2:
      return crypto.randomBytes(len).toString('base64').slice(0, len)
    default:
      return String.fromCodePoint(
        ...Array.from({ length: Math.min(len, 64) }, () => rnd(0x11000)).filter((c) => c < 0xd800 || c > 0xdfff),
      )
  }
}

/** Flips, inserts, deletes or truncates a few characters of a seed. */
function mutate(s: string): string {
  let out = s
  for (let k = 1 + rnd(3); k > 0; k--) {
    const i = out.length === 0 ? 0 : rnd(out.length)
    const c = ALPHABET[rnd(ALPHABET.length)] ?? ''
    switch (rnd(4)) {
      case 0:
        out = out.slice(0, i) + c + out.slice(i + 1)
        break
      case 1:
        out = out.slice(0, i) + c + out.slice(i)
        break
      case 2:
        out = out.slice(0, i) + out.slice(i + 1)
        break
      default:
        out = out.slice(0, i)
    }
  }
  return out
}

function randomBytes(): Buffer {
  if (rnd(3) === 0) {
    // Structured: fields joined by NULs or a space, the shapes the parsers look for.
    const f = () =>
      crypto.randomBytes(pick([0, 1, 5, 254, 255, 256, 1023, 1024, 1025])).toString(rnd(2) ? 'hex' : 'latin1')
    return Buffer.from(
      rnd(2) ? `${f()}\0${f()}\0${f()}` : `${f()} ${crypto.randomBytes(16).toString('hex')}`,
      rnd(2) ? 'utf8' : 'latin1',
    )
  }
  return crypto.randomBytes(pick([0, 1, 2, 3, 33, 255, 288, 1024, 1025, 1600]))
}

async function once(): Promise<void> {
  const s = rnd(2) ? randomString() : mutate(pick(SEEDS_B64))
  const bytes = randomBytes()
  const stored = rnd(2) ? randomString() : mutate(pick(SEEDS_STORED))
  const given = rnd(4) === 0 ? stored : randomString()
  try {
    await check(s, bytes, stored, given)
  } catch (err) {
    const input = JSON.stringify({ s, bytes: bytes.toString('base64'), stored, given })
    throw new Error(`sasl fuzz contract broken for ${input}`, { cause: err })
  }
}

async function check(s: string, bytes: Buffer, stored: string, given: string): Promise<void> {
  const decoded = decodeBase64Strict(s)
  if (decoded !== undefined && s !== '=' && s !== '')
    assert.equal(decoded.toString('base64'), s, 'base64 must be canonical')

  const buf = decoded !== undefined && decoded.length > 0 ? decoded : bytes
  const plain = parsePlain(buf)
  if (plain !== undefined) {
    assert.ok(plain.authcid !== '' && Buffer.byteLength(plain.authcid) <= MAX_AUTHCID_BYTES)
    assert.ok(plain.password !== '' && Buffer.byteLength(plain.password) <= MAX_PASSWORD_BYTES)
    assert.ok(!/[\0\r\n]/.test(plain.authzid + plain.authcid + plain.password))
  }
  const cram = parseCramResponse(buf)
  if (cram !== undefined) assert.match(cram.digest, /^[0-9a-f]{32}$/)
  const login = parseLoginField(buf)
  if (login !== undefined)
    assert.ok(login !== '' && Buffer.byteLength(login) <= MAX_LOGIN_FIELD_BYTES && !/\p{Cc}/u.test(login))

  assert.equal(typeof (await verifyPassword(stored, given)), 'boolean')
}

/** Runs random inputs for `seconds`; rejects with the failing input on the first contract break. */
export async function fuzzSasl(seconds: number): Promise<{ iterations: number }> {
  const end = Date.now() + seconds * 1000
  let iterations = 0
  while (Date.now() < end) {
    await once()
    iterations++
  }
  return { iterations }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const seconds = Number(process.argv[2] ?? 3)
  fuzzSasl(Number.isFinite(seconds) && seconds > 0 ? seconds : 3).then(
    ({ iterations }) => console.log(`sasl fuzz: ${iterations} iterations, no failures`),
    (err: unknown) => {
      console.error('sasl fuzz FAILED:', err)
      process.exitCode = 1
    },
  )
}
