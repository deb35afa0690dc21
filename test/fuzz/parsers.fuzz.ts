/**
 * Random fuzzer for the envelope parsers (address.ts, mail-params.ts, xtext.ts, command-line.ts):
 * `node test/fuzz/parsers.fuzz.ts [seconds] [seed]`.
 *
 * Inputs are random strings rich in `<>@".\[]:,%!+=`, hex escapes, UTF-8 and the odd control character,
 * plus mutations of valid MAIL/RCPT arguments. Invariants: nothing throws; every result is a ParseResult
 * with a 5xx code; a parsed Address holds no control character and survives formatAddress → parse
 * unchanged; decoded xtext (ENVID, AUTH, ORCPT, RFC 6533 utf-8 addresses) holds no control character;
 * the ORCPT value passed on to the next hop holds no control character or space, and raw UTF-8 only
 * in an SMTPUTF8 transaction. Seeded, so a failure prints a seed and the input that reproduce it.
 */
import { setImmediate } from 'node:timers/promises'
import { parseForwardPath, parseReversePath, splitPathAndParams } from '../../src/protocol/address.ts'
import { isHttpLike, splitCommand } from '../../src/protocol/command-line.ts'
import { type Address, formatAddress } from '../../src/protocol/envelope.ts'
import { type ExtensionSet, parseMailParams, parseRcptParams } from '../../src/protocol/mail-params.ts'
import type { ParseResult } from '../../src/protocol/parse-result.ts'
import { decodeUtf8AddrXtext, decodeXtext, encodeXtext, isXtext } from '../../src/protocol/xtext.ts'
import { forSeconds, rng } from './random.ts'

const PIECES = [
  ...'<>@".\\[]:,%!+=;-_ ',
  ...'aZ09xy',
  'a',
  'b',
  'example.test',
  'IPv6:',
  '::1',
  '192.0.2.1',
  '+0D',
  '+0A',
  '+00',
  '+2B',
  '+C3+A9',
  '+C2+85',
  '+ff',
  'é',
  '😀',
  '\u3002',
  'ｅ',
  '\ufffd',
  'xn--bcher-kva',
  'postmaster',
  'SIZE=',
  'BODY=8BITMIME',
  'SMTPUTF8',
  'ENVID=',
  'AUTH=',
  'NOTIFY=',
  'SUCCESS,',
  'NEVER',
  'ORCPT=rfc822;',
  'ORCPT=utf-8;',
  '\\x{',
  '\\x{FC}',
  '\\x{A}',
  '\\x{D800}',
  '}',
  'RET=HDRS',
  'FROM:',
  'TO:',
  'HTTP/1.1',
  '\\"',
  '""',
]
const RARE = ['\x00', '\r', '\n', '\t', '\x7f', '\u0085', '\u009b', '\ud800', '\udc00']

const SEEDS = [
  'FROM:<a@b.test> SIZE=10',
  'FROM:<> BODY=8BITMIME SMTPUTF8',
  'TO:<"a b"@c.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@c',
  'TO:<\u00fcser@localhost> ORCPT=rfc822;+C3+BCser@localhost',
  'TO:<\u00fcser@localhost> ORCPT=utf-8;\u00fcser@localhost',
  'TO:<a@b> ORCPT=utf-8;j\\x{F6}rg@b',
  'TO:<@x,@y:a%b@[192.0.2.1]>',
  'FROM:<j\u00f6rg@b\u00fccher.example> SMTPUTF8 ENVID=x+2By AUTH=<>',
  'TO:<a@[IPv6:2001:db8::1]>',
  'TO:<Postmaster>',
  'FROM: a@b RET=FULL REQUIRETLS',
]

const ALL: ExtensionSet = {
  size: true,
  eightBitMime: true,
  binaryMime: true,
  smtputf8: true,
  dsn: true,
  requireTls: true,
  auth: true,
}

const CONTROL = /[\x00-\x1f\x7f-\x9f]/

function randomString(rand: () => number): string {
  const n = Math.floor(rand() * rand() * 60)
  let s = ''
  for (let i = 0; i < n; i++) {
    s += rand() < 0.02 ? RARE[Math.floor(rand() * RARE.length)] : PIECES[Math.floor(rand() * PIECES.length)]
  }
  return s
}

function mutate(rand: () => number, s: string): string {
  let out = s
  const edits = 1 + Math.floor(rand() * 4)
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rand() * (out.length + 1))
    const r = rand()
    if (r < 0.4) out = out.slice(0, at) + randomString(rand).slice(0, 3) + out.slice(at)
    else if (r < 0.8) out = out.slice(0, at) + out.slice(at + 1 + Math.floor(rand() * 3))
    else out = out.slice(0, at) + out.slice(at).repeat(2)
  }
  return out
}

function checkResult(r: ParseResult<unknown>, what: string): void {
  if (typeof r !== 'object' || r === null || typeof r.ok !== 'boolean') throw new Error(`${what}: not a ParseResult`)
  if (r.ok) return
  if (!Number.isInteger(r.code) || r.code < 500 || r.code > 599) throw new Error(`${what}: code ${r.code}`)
  if (!/^5\.\d+\.\d+$/.test(r.enhanced)) throw new Error(`${what}: enhanced ${r.enhanced}`)
  if (typeof r.message !== 'string' || CONTROL.test(r.message)) throw new Error(`${what}: bad message`)
}

let addresses = 0

function checkAddress(r: ParseResult<Address | null>, role: 'sender' | 'recipient', utf8: boolean): void {
  checkResult(r, role)
  if (!r.ok) return
  addresses++
  const a = r.value
  if (a === null) {
    if (role === 'recipient') throw new Error('recipient parsed as <>')
    return
  }
  if (CONTROL.test(a.local) || CONTROL.test(a.domain ?? '')) throw new Error(`${role}: control character in address`)
  if (a.utf8 && !utf8) throw new Error(`${role}: UTF-8 address without SMTPUTF8`)
  if (a.domain === undefined && role === 'sender') throw new Error('sender without domain')
  const text = `<${formatAddress(a)}>`
  const opts = { smtputf8: a.utf8, strict: true }
  const again = role === 'sender' ? parseReversePath(text, opts) : parseForwardPath(text, opts)
  if (!again.ok || JSON.stringify(again.value) !== JSON.stringify(a) || again.value?.domain !== a.domain) {
    throw new Error(`${role}: round trip through ${JSON.stringify(text)} gave ${JSON.stringify(again)}`)
  }
}

function noControl(value: string | undefined, what: string): void {
  if (value !== undefined && CONTROL.test(value)) throw new Error(`${what}: decoded control character`)
}

/** What a relay passes on (RFC 3461 §5.2.1) must be one safe esmtp-value. */
function checkOrcpt(orcpt: { address: string; encoded: string } | undefined, smtputf8: boolean): void {
  if (orcpt === undefined) return
  noControl(orcpt.address, 'ORCPT')
  if (/[\x00-\x20\x7f-\x9f]/.test(orcpt.encoded)) throw new Error('ORCPT: control or space passed on')
  if (!smtputf8 && /[^\x21-\x7e]/.test(orcpt.encoded)) throw new Error('ORCPT: raw UTF-8 without SMTPUTF8')
}

/** One input through every parser; throws on a broken invariant. */
function exercise(input: string, rand: () => number): void {
  const strict = rand() < 0.3
  const smtputf8 = rand() < 0.5
  checkResult(decodeXtext(input), 'xtext')
  const x = decodeXtext(input)
  if (x.ok) {
    noControl(x.value, 'xtext')
    if (!isXtext(input)) throw new Error('decoded text that isXtext refuses')
    if (decodeXtext(encodeXtext(x.value)).ok !== true) throw new Error('xtext re-encoding does not decode')
  }
  splitCommand(input)
  isHttpLike(input)
  checkAddress(parseReversePath(input, { smtputf8, strict }), 'sender', smtputf8)
  checkAddress(parseForwardPath(input, { smtputf8, strict }), 'recipient', smtputf8)
  for (const keyword of ['FROM', 'TO'] as const) {
    const split = splitPathAndParams(input, { keyword, strict })
    checkResult(split, `split ${keyword}`)
    if (!split.ok) continue
    const path = split.value.path
    if (keyword === 'FROM') {
      checkAddress(parseReversePath(path, { smtputf8, strict }), 'sender', smtputf8)
      const p = parseMailParams(split.value.params, ALL)
      checkResult(p, 'mail params')
      if (p.ok) {
        noControl(p.value.envid, 'ENVID')
        noControl(p.value.auth, 'AUTH')
      }
    } else {
      checkAddress(parseForwardPath(path, { smtputf8, strict }), 'recipient', smtputf8)
      const p = parseRcptParams(split.value.params, ALL, { smtputf8 })
      checkResult(p, 'rcpt params')
      if (p.ok) checkOrcpt(p.value.orcpt, smtputf8)
    }
  }
  checkResult(parseMailParams(input, ALL), 'mail params (raw)')
  checkResult(parseRcptParams(input, ALL, { smtputf8 }), 'rcpt params (raw)')
  const u = decodeUtf8AddrXtext(input, { utf8: smtputf8 })
  checkResult(u, 'utf-8-addr-xtext')
  if (u.ok) noControl(u.value, 'utf-8-addr-xtext')
}

/** A JavaScript string literal for the input, every non-printable-ASCII unit escaped. */
const visible = (s: string): string =>
  `'${s.replace(/[^\x20-\x7e]|['\\]/g, (c) => (c === "'" || c === '\\' ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))}'`

/** Runs random inputs for `seconds`; rejects with the seed and input on the first broken invariant. */
export async function fuzzParsers(
  seconds: number,
  seed = Date.now(),
): Promise<{ iterations: number; addresses: number }> {
  addresses = 0
  const rand = rng(seed)
  const more = forSeconds(seconds)
  let iterations = 0
  while (more()) {
    for (let batch = 0; batch < 200; batch++) {
      const r = rand()
      const input =
        r < 0.4
          ? randomString(rand)
          : r < 0.8
            ? mutate(rand, SEEDS[Math.floor(rand() * SEEDS.length)] ?? '')
            : `${rand() < 0.5 ? 'FROM:' : 'TO:'}<${randomString(rand)}>${rand() < 0.5 ? ` ${randomString(rand)}` : ''}`
      try {
        exercise(input, rand)
      } catch (err) {
        throw new Error(
          `parsers fuzz: ${(err as Error).message}\nseed=${seed} iteration=${iterations}\ninput=${visible(input)}`,
          {
            cause: err,
          },
        )
      }
      iterations++
    }
    await setImmediate()
  }
  return { iterations, addresses }
}

if (import.meta.main) {
  const seconds = Number(process.argv[2] ?? 3)
  const seed = process.argv[3] === undefined ? Date.now() : Number(process.argv[3])
  const { iterations, addresses } = await fuzzParsers(seconds, seed)
  console.log(
    `parsers fuzz: ${iterations} cases (${addresses} parsed addresses) in ${seconds} s, seed ${seed}, no failures`,
  )
}
