import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { assertLinear } from '../../test/linear-time.ts'
import { splitPathAndParams } from './address.ts'
import type { MailParams, RcptParams } from './envelope.ts'
import { type ExtensionSet, parseMailParams, parseRcptParams } from './mail-params.ts'
import type { ParseResult } from './parse-result.ts'

const ALL: ExtensionSet = {
  size: true,
  eightBitMime: true,
  binaryMime: true,
  smtputf8: true,
  dsn: true,
  requireTls: true,
  auth: true,
}
const NONE: ExtensionSet = {
  size: false,
  eightBitMime: false,
  binaryMime: false,
  smtputf8: false,
  dsn: false,
  requireTls: false,
  auth: false,
}

const E501 = { code: 501, enhanced: '5.5.4' } as const
const E555 = { code: 555, enhanced: '5.5.4' } as const
type Failure = typeof E501 | typeof E555

const MAIL_DEFAULTS: MailParams = {
  size: undefined,
  body: undefined,
  smtputf8: false,
  requireTls: false,
  ret: undefined,
  envid: undefined,
  envidEncoded: undefined,
  auth: undefined,
  other: new Map(),
}
const RCPT_DEFAULTS: RcptParams = { notify: undefined, orcpt: undefined, other: new Map() }

function expect<T>(r: ParseResult<T>, want: T | Failure, message?: RegExp): void {
  if (want === E501 || want === E555) {
    assert.equal(r.ok, false, `expected failure, got ${JSON.stringify(r)}`)
    if (r.ok) return
    assert.deepEqual({ code: r.code, enhanced: r.enhanced }, want, r.message)
    if (message) assert.match(r.message, message)
  } else {
    assert.deepEqual(r, { ok: true, value: want })
  }
}

interface MailCase {
  readonly name: string
  readonly params: string
  readonly want: Partial<MailParams> | Failure
  readonly ext?: ExtensionSet
  readonly message?: RegExp
}

const mailCases: MailCase[] = [
  { name: 'none', params: '', want: {} },
  { name: 'SIZE', params: 'SIZE=1000', want: { size: 1000 } },
  { name: 'size lower-case, zero', params: 'size=0', want: { size: 0 } },
  { name: 'SIZE 20 digits with zeros', params: 'SIZE=00000000000000000001', want: { size: 1 } },
  { name: 'SIZE max safe integer', params: 'SIZE=9007199254740991', want: { size: 9007199254740991 } },
  // security.md §1.10.
  { name: 'SIZE past 2^53', params: 'SIZE=9007199254740992', want: E501, message: /too large/ },
  { name: 'SIZE=-1', params: 'SIZE=-1', want: E501 },
  { name: 'SIZE=abc', params: 'SIZE=abc', want: E501 },
  { name: 'SIZE=', params: 'SIZE=', want: E501 },
  { name: 'SIZE without value', params: 'SIZE', want: E501 },
  { name: 'SIZE overflow (23 digits)', params: 'SIZE=99999999999999999999999', want: E501 },
  { name: 'SIZE 21 digits', params: 'SIZE=000000000000000000001', want: E501 },
  { name: 'SIZE=1e3', params: 'SIZE=1e3', want: E501 },
  { name: 'SIZE=+1', params: 'SIZE=+1', want: E501 },
  { name: 'SIZE=0x10', params: 'SIZE=0x10', want: E501 },
  { name: 'SIZE fullwidth digit', params: 'SIZE=１', want: E501, message: /printable ASCII/ },
  { name: 'SIZE not advertised', params: 'SIZE=1', ext: NONE, want: E555, message: /SIZE/ },
  { name: 'duplicate SIZE', params: 'SIZE=1 SIZE=2', want: E501, message: /Duplicate/ },
  { name: 'duplicate SIZE, other case', params: 'SIZE=1 size=1', want: E501 },
  { name: 'BODY=7BIT', params: 'BODY=7BIT', want: { body: '7BIT' } },
  { name: 'BODY=8bitmime', params: 'BODY=8bitmime', want: { body: '8BITMIME' } },
  { name: 'BODY=BINARYMIME', params: 'BODY=BINARYMIME', want: { body: 'BINARYMIME' } },
  { name: 'BINARYMIME not advertised', params: 'BODY=BINARYMIME', ext: { ...ALL, binaryMime: false }, want: E555 },
  { name: '8BITMIME not advertised', params: 'BODY=8BITMIME', ext: { ...ALL, eightBitMime: false }, want: E555 },
  { name: 'BODY not advertised', params: 'BODY=7BIT', ext: NONE, want: E555 },
  { name: 'BODY=8BIT', params: 'BODY=8BIT', want: E501 },
  { name: 'BODY without value', params: 'BODY', want: E501 },
  { name: 'SMTPUTF8', params: 'SMTPUTF8', want: { smtputf8: true } },
  { name: 'SMTPUTF8 with value', params: 'SMTPUTF8=yes', want: E501, message: /no value/ },
  { name: 'SMTPUTF8 not advertised', params: 'SMTPUTF8', ext: NONE, want: E555 },
  // Python's smtplib send_message(..., mail_options=['SMTPUTF8']) sends `SMTPUTF8 SMTPUTF8 BODY=8BITMIME`;
  // Postfix and Exim accept it. A repeated flag without a value changes nothing.
  { name: 'SMTPUTF8 repeated', params: 'SMTPUTF8 smtputf8 BODY=8BITMIME', want: { smtputf8: true, body: '8BITMIME' } },
  { name: 'REQUIRETLS repeated', params: 'REQUIRETLS REQUIRETLS', want: { requireTls: true } },
  { name: 'SMTPUTF8 then SMTPUTF8 with a value', params: 'SMTPUTF8 SMTPUTF8=x', want: E501 },
  { name: 'REQUIRETLS', params: 'REQUIRETLS', want: { requireTls: true } },
  { name: 'REQUIRETLS with value', params: 'REQUIRETLS=1', want: E501 },
  { name: 'REQUIRETLS not advertised', params: 'REQUIRETLS', ext: NONE, want: E555 },
  { name: 'RET=FULL', params: 'RET=FULL', want: { ret: 'FULL' } },
  { name: 'RET=hdrs', params: 'RET=hdrs', want: { ret: 'HDRS' } },
  { name: 'RET=PARTIAL', params: 'RET=PARTIAL', want: E501 },
  { name: 'RET without value', params: 'RET', want: E501 },
  { name: 'RET without DSN', params: 'RET=FULL', ext: NONE, want: E555 },
  { name: 'ENVID', params: 'ENVID=abc+2Bdef', want: { envid: 'abc+def', envidEncoded: 'abc+2Bdef' } },
  { name: 'ENVID with encoded space', params: 'ENVID=a+20b', want: { envid: 'a b', envidEncoded: 'a+20b' } },
  // A needless +7E (~ may be sent raw) is kept, so the next hop gets the ENVID unchanged.
  { name: 'ENVID with a needless encoding', params: 'ENVID=a+7Eb', want: { envid: 'a~b', envidEncoded: 'a+7Eb' } },
  {
    name: 'ENVID 100 decoded',
    params: `ENVID=${'a+41'.repeat(50)}`,
    want: { envid: 'aA'.repeat(50), envidEncoded: 'a+41'.repeat(50) },
  },
  { name: 'ENVID 101 decoded', params: `ENVID=${'a'.repeat(101)}`, want: E501, message: /100/ },
  // security.md §1.5.
  { name: 'ENVID LF . LF', params: 'ENVID=x+0A+2E+0A', want: E501, message: /control/ },
  { name: 'ENVID lower-case hex', params: 'ENVID=x+0d', want: E501 },
  { name: 'ENVID non-ASCII', params: 'ENVID=+C3+A9', want: E501, message: /not ASCII/ },
  { name: 'ENVID empty', params: 'ENVID=', want: E501 },
  { name: 'ENVID without DSN', params: 'ENVID=a', ext: NONE, want: E555 },
  { name: 'AUTH=<>', params: 'AUTH=<>', want: { auth: '<>' } },
  { name: 'AUTH mailbox', params: 'AUTH=a+2Bb@c.test', want: { auth: 'a+b@c.test' } },
  { name: 'AUTH UTF-8 mailbox', params: 'AUTH=j+C3+B6rg@t.test', want: { auth: 'jörg@t.test' } },
  { name: 'AUTH CR LF injection', params: 'AUTH=x+0D+0AX-Inj:+201', want: E501, message: /AUTH.*control/ },
  { name: 'AUTH NUL', params: 'AUTH=+00', want: E501 },
  { name: 'AUTH C1', params: 'AUTH=x+C2+85', want: E501 },
  { name: 'AUTH invalid UTF-8', params: 'AUTH=+FF', want: E501 },
  { name: 'AUTH 257 octets', params: `AUTH=${'a'.repeat(257)}`, want: E501 },
  { name: 'AUTH not advertised', params: 'AUTH=<>', ext: NONE, want: E555 },
  { name: 'unknown', params: 'FOO=bar', want: E555, message: /FOO/ },
  { name: 'unknown without value', params: 'X-FOO', want: E555 },
  { name: 'junk after path (security.md §1.13)', params: 'junk', want: E555 },
  { name: 'RCPT parameter on MAIL', params: 'NOTIFY=NEVER', want: E555 },
  {
    name: 'plugin keyword',
    params: 'X-FOO',
    ext: { ...ALL, otherKeywords: ['x-foo'] },
    want: { other: new Map([['X-FOO', undefined]]) },
  },
  {
    name: 'plugin keyword with value',
    params: 'xfoo=1',
    ext: { ...ALL, otherKeywords: ['XFOO'] },
    want: { other: new Map([['XFOO', '1']]) },
  },
  { name: 'missing keyword', params: '=1', want: E501 },
  { name: 'keyword starts with -', params: '-A=1', want: E501 },
  { name: 'underscore in keyword', params: 'A_B=1', want: E501 },
  { name: 'equals in value', params: 'SIZE=1=2', want: E501 },
  { name: 'control char in value', params: 'FOO=\x01', want: E501 },
  { name: 'NUL in keyword', params: 'SIZE\x00=1', want: E501 },
  { name: 'tab separator', params: 'SIZE=1\tBODY=7BIT', want: E501 },
  { name: 'non-ASCII value', params: 'FOO=é', want: E501 },
  {
    name: 'several',
    params: 'SIZE=10 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x AUTH=<> REQUIRETLS',
    want: {
      size: 10,
      body: '8BITMIME',
      smtputf8: true,
      ret: 'HDRS',
      envid: 'x',
      envidEncoded: 'x',
      auth: '<>',
      requireTls: true,
    },
  },
  { name: 'several spaces', params: 'SIZE=1   BODY=7BIT ', want: { size: 1, body: '7BIT' } },
]

describe('parseMailParams', () => {
  for (const c of mailCases) {
    it(c.name, () => {
      const want = c.want === E501 || c.want === E555 ? c.want : { ...MAIL_DEFAULTS, ...c.want }
      expect(parseMailParams(c.params, c.ext ?? ALL), want, c.message)
    })
  }
})

interface RcptCase {
  readonly name: string
  readonly params: string
  readonly want: Partial<RcptParams> | Failure
  readonly ext?: ExtensionSet
  /** The transaction declared SMTPUTF8 (default: no). */
  readonly smtputf8?: boolean
  readonly message?: RegExp
}

const orcpt = (type: string, address: string, encoded: string) => ({ orcpt: { type, address, encoded } })

const rcptCases: RcptCase[] = [
  { name: 'none', params: '', want: {} },
  { name: 'NOTIFY=NEVER', params: 'NOTIFY=NEVER', want: { notify: ['NEVER'] } },
  {
    name: 'NOTIFY list, any case',
    params: 'NOTIFY=success,Failure,DELAY',
    want: { notify: ['SUCCESS', 'FAILURE', 'DELAY'] },
  },
  { name: 'NOTIFY repeated item', params: 'NOTIFY=SUCCESS,SUCCESS', want: { notify: ['SUCCESS'] } },
  { name: 'NOTIFY NEVER with others', params: 'NOTIFY=NEVER,SUCCESS', want: E501, message: /alone/ },
  { name: 'NOTIFY trailing comma', params: 'NOTIFY=SUCCESS,', want: E501 },
  { name: 'NOTIFY leading comma', params: 'NOTIFY=,SUCCESS', want: E501 },
  { name: 'NOTIFY unknown', params: 'NOTIFY=ALWAYS', want: E501 },
  { name: 'NOTIFY empty', params: 'NOTIFY=', want: E501 },
  { name: 'NOTIFY without DSN', params: 'NOTIFY=NEVER', ext: NONE, want: E555 },
  { name: 'duplicate NOTIFY', params: 'NOTIFY=NEVER notify=DELAY', want: E501 },
  { name: 'ORCPT', params: 'ORCPT=rfc822;a+2Bb@c.test', want: orcpt('rfc822', 'a+b@c.test', 'a+2Bb@c.test') },
  { name: 'ORCPT type case kept', params: 'ORCPT=RFC822;a@b', want: orcpt('RFC822', 'a@b', 'a@b') },
  // security.md §1.5.
  { name: 'ORCPT CR LF injection', params: 'ORCPT=rfc822;x+0D+0AX', want: E501, message: /control/ },
  { name: 'ORCPT rfc822 UTF-8 without SMTPUTF8', params: 'ORCPT=rfc822;+C3+A9@x', want: E501, message: /SMTPUTF8/ },
  // Postfix relaying `RCPT TO:<üser@localhost>` of an SMTPUTF8 message (issue 10).
  {
    name: 'ORCPT rfc822 UTF-8 in xtext, SMTPUTF8',
    params: 'ORCPT=rfc822;+C3+BCser@localhost',
    smtputf8: true,
    want: orcpt('rfc822', 'üser@localhost', '+C3+BCser@localhost'),
  },
  {
    name: 'ORCPT rfc822 raw UTF-8, SMTPUTF8 (RFC 6531 §3.3)',
    params: 'ORCPT=rfc822;üser@localhost',
    smtputf8: true,
    want: orcpt('rfc822', 'üser@localhost', 'üser@localhost'),
  },
  { name: 'ORCPT rfc822 raw UTF-8 without SMTPUTF8', params: 'ORCPT=rfc822;üser@x', want: E501, message: /ASCII/ },
  {
    name: 'ORCPT rfc822 encoded C1 control, SMTPUTF8',
    params: 'ORCPT=rfc822;a+C2+85@x',
    smtputf8: true,
    want: E501,
    message: /control/,
  },
  // RFC 6533 §3: utf-8-addr-xtext anywhere, utf-8-addr-unitext in an SMTPUTF8 transaction.
  {
    name: 'ORCPT utf-8 addr-xtext',
    params: 'ORCPT=utf-8;j\\x{F6}rg@t',
    want: orcpt('utf-8', 'jörg@t', 'j\\x{F6}rg@t'),
  },
  {
    name: 'ORCPT utf-8 addr-xtext, lower case and astral',
    params: 'ORCPT=UTF-8;\\x{1f600}\\x{2b}x@t',
    want: orcpt('UTF-8', '😀+x@t', '\\x{1f600}\\x{2b}x@t'),
  },
  {
    name: 'ORCPT utf-8 addr-unitext, SMTPUTF8',
    params: 'ORCPT=utf-8;üser@localhost',
    smtputf8: true,
    want: orcpt('utf-8', 'üser@localhost', 'üser@localhost'),
  },
  { name: 'ORCPT utf-8 addr-unitext without SMTPUTF8', params: 'ORCPT=utf-8;üser@x', want: E501, message: /ASCII/ },
  // Postfix's uxtext_unquote reads anything but \x{...} literally.
  { name: 'ORCPT utf-8 plus is literal', params: 'ORCPT=utf-8;a+C3@x', want: orcpt('utf-8', 'a+C3@x', 'a+C3@x') },
  { name: 'ORCPT utf-8 encoded LF', params: 'ORCPT=utf-8;a\\x{A}@x', want: E501, message: /control/ },
  { name: 'ORCPT utf-8 encoded C1', params: 'ORCPT=utf-8;a\\x{85}@x', want: E501, message: /control/ },
  { name: 'ORCPT utf-8 surrogate', params: 'ORCPT=utf-8;\\x{D800}@x', want: E501, message: /scalar/ },
  { name: 'ORCPT utf-8 past U+10FFFF', params: 'ORCPT=utf-8;\\x{110000}@x', want: E501, message: /scalar/ },
  { name: 'ORCPT utf-8 unterminated', params: 'ORCPT=utf-8;a\\x{F6', want: E501, message: /hex digits/ },
  { name: 'ORCPT utf-8 empty braces', params: 'ORCPT=utf-8;a\\x{}b', want: E501, message: /hex digits/ },
  { name: 'ORCPT utf-8 seven digits', params: 'ORCPT=utf-8;\\x{0000041}', want: E501, message: /hex digits/ },
  { name: 'ORCPT empty address', params: 'ORCPT=rfc822;', want: E501 },
  { name: 'ORCPT empty type', params: 'ORCPT=;a@b', want: E501 },
  { name: 'ORCPT no type', params: 'ORCPT=a@b', want: E501 },
  { name: 'ORCPT bad type', params: 'ORCPT=rfc(822);a@b', want: E501 },
  {
    name: 'ORCPT 500',
    params: `ORCPT=rfc822;${'a'.repeat(493)}`,
    want: orcpt('rfc822', 'a'.repeat(493), 'a'.repeat(493)),
  },
  { name: 'ORCPT 501', params: `ORCPT=rfc822;${'a'.repeat(494)}`, want: E501, message: /500/ },
  { name: 'ORCPT without DSN', params: 'ORCPT=rfc822;a@b', ext: NONE, want: E555 },
  { name: 'MAIL parameter on RCPT', params: 'SIZE=1', want: E555 },
  { name: 'unknown', params: 'XRCPTFORWARD=1', want: E555 },
  {
    name: 'plugin keyword',
    params: 'X-PRIO=3',
    ext: { ...ALL, otherKeywords: ['X-PRIO'] },
    want: { other: new Map([['X-PRIO', '3']]) },
  },
]

describe('parseRcptParams', () => {
  for (const c of rcptCases) {
    it(c.name, () => {
      const want = c.want === E501 || c.want === E555 ? c.want : { ...RCPT_DEFAULTS, ...c.want }
      expect(parseRcptParams(c.params, c.ext ?? ALL, { smtputf8: c.smtputf8 ?? false }), want, c.message)
    })
  }
})

describe('full MAIL/RCPT arguments (security.md §1.5)', () => {
  const lines = [
    ['FROM', 'FROM:<a@t.test> AUTH=x+0D+0AX-Inj:+201'],
    ['FROM', 'FROM:<a@t.test> ENVID=x+0A+2E+0A'],
    ['TO', 'TO:<b@t.test> ORCPT=rfc822;x+0D+0AX'],
  ] as const
  for (const [kw, rest] of lines) {
    it(rest, () => {
      const s = splitPathAndParams(rest, { keyword: kw, strict: true })
      assert.ok(s.ok)
      const r =
        kw === 'FROM' ? parseMailParams(s.value.params, ALL) : parseRcptParams(s.value.params, ALL, { smtputf8: true })
      expect<unknown>(r, E501)
    })
  }
})

describe('ReDoS (parameter strings up to 64 KB, time linear in their length)', () => {
  const inputs = [
    ['many spaces', (n: number) => ' '.repeat(n)],
    ['long SIZE', (n: number) => `SIZE=${'9'.repeat(n)}`],
    ['long ENVID', (n: number) => `ENVID=${'a+41'.repeat(n / 4)}`],
    ['long NOTIFY', (n: number) => `NOTIFY=${'SUCCESS,'.repeat(n / 8)}`],
    ['long ORCPT', (n: number) => `ORCPT=rfc822;${'a'.repeat(n)}`],
    ['many unknown keywords', (n: number) => 'X=1 '.repeat(n / 4)],
    ['long keyword', (n: number) => 'A'.repeat(n)],
    ['many duplicates', (n: number) => 'SMTPUTF8 '.repeat(n / 9)],
  ] as const
  for (const [name, params] of inputs) {
    it(name, () => {
      assertLinear(name, params, (p) => {
        parseMailParams(p, ALL)
        parseRcptParams(p, ALL, { smtputf8: true })
      })
    })
  }
})
