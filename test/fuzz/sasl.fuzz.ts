/**
 * Fuzzes the SASL decoders and verifyPassword with random and mutated input: nothing may throw,
 * and decoders must keep their contracts (canonical base64 round-trips, field limits hold).
 * Run: `node test/fuzz/sasl.fuzz.ts [seconds] [seed]` (default 3 s). Exits 1 on the first failure,
 * printing the seed that reproduces it.
 */
import assert from 'node:assert/strict'
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
import { below, forSeconds, pick, type Random, randomOctets, rng } from './random.ts'

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

function randomString(rand: Random): string {
  const len = pick(rand, [0, 1, 2, 3, 4, 5, 7, 8, 16, 43, 86, 255, 256, 1024, 1025, 2000])
  switch (below(rand, 4)) {
    case 0:
      return Array.from({ length: len }, () => ALPHABET[below(rand, ALPHABET.length)]).join('')
    case 1:
      return randomOctets(rand, len).toString('latin1')
    case 2:
      return randomOctets(rand, len).toString('base64').slice(0, len)
    default:
      return String.fromCodePoint(
        ...Array.from({ length: Math.min(len, 64) }, () => below(rand, 0x11000)).filter(
          (c) => c < 0xd800 || c > 0xdfff,
        ),
      )
  }
}

/** Flips, inserts, deletes or truncates a few characters of a seed. */
function mutate(rand: Random, s: string): string {
  let out = s
  for (let k = 1 + below(rand, 3); k > 0; k--) {
    const i = out.length === 0 ? 0 : below(rand, out.length)
    const c = ALPHABET[below(rand, ALPHABET.length)] ?? ''
    switch (below(rand, 4)) {
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

function randomBytes(rand: Random): Buffer {
  if (below(rand, 3) === 0) {
    // Structured: fields joined by NULs or a space, the shapes the parsers look for.
    const f = () =>
      randomOctets(rand, pick(rand, [0, 1, 5, 254, 255, 256, 1023, 1024, 1025])).toString(
        below(rand, 2) ? 'hex' : 'latin1',
      )
    return Buffer.from(
      below(rand, 2) ? `${f()}\0${f()}\0${f()}` : `${f()} ${randomOctets(rand, 16).toString('hex')}`,
      below(rand, 2) ? 'utf8' : 'latin1',
    )
  }
  return randomOctets(rand, pick(rand, [0, 1, 2, 3, 33, 255, 288, 1024, 1025, 1600]))
}

async function once(rand: Random): Promise<void> {
  const s = below(rand, 2) ? randomString(rand) : mutate(rand, pick(rand, SEEDS_B64))
  const bytes = randomBytes(rand)
  const stored = below(rand, 2) ? randomString(rand) : mutate(rand, pick(rand, SEEDS_STORED))
  const given = below(rand, 4) === 0 ? stored : randomString(rand)
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

/** Runs random inputs for `seconds`; rejects with the seed and failing input on the first contract break. */
export async function fuzzSasl(seconds: number, seed = Date.now()): Promise<{ iterations: number }> {
  const rand = rng(seed)
  const more = forSeconds(seconds)
  let iterations = 0
  while (more()) {
    try {
      await once(rand)
    } catch (err) {
      throw new Error(`${(err as Error).message}\nseed=${seed} iteration=${iterations}`, { cause: err })
    }
    iterations++
  }
  return { iterations }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const seconds = Number(process.argv[2] ?? 3)
  const seed = process.argv[3] === undefined ? Date.now() : Number(process.argv[3])
  fuzzSasl(Number.isFinite(seconds) && seconds > 0 ? seconds : 3, seed).then(
    ({ iterations }) => console.log(`sasl fuzz: ${iterations} iterations, seed ${seed}, no failures`),
    (err: unknown) => {
      console.error('sasl fuzz FAILED:', err)
      process.exitCode = 1
    },
  )
}
