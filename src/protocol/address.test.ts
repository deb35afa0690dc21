import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { assertLinear } from '../../test/linear-time.ts'
import { normalizeDomain, type PathOptions, parseForwardPath, parseReversePath, splitPathAndParams } from './address.ts'
import { formatAddress } from './envelope.ts'
import type { ParseResult } from './parse-result.ts'

const LENIENT: PathOptions = { smtputf8: false, strict: false }
const STRICT: PathOptions = { smtputf8: false, strict: true }
const UTF8: PathOptions = { smtputf8: true, strict: false }

type Want = readonly [local: string, domain: string | undefined] | { readonly code: number; readonly enhanced: string }
const E501 = { code: 501, enhanced: '5.1.3' } as const
const S501 = { code: 501, enhanced: '5.1.7' } as const
const E553 = { code: 553, enhanced: '5.6.7' } as const

interface Case {
  readonly name: string
  readonly path: string
  readonly want: Want
  readonly opts?: PathOptions
  readonly message?: RegExp
}

function check(r: ParseResult<{ local: string; domain: string | undefined } | null>, c: Case): void {
  if (Array.isArray(c.want)) {
    assert.ok(r.ok, `expected success, got ${r.ok ? '' : r.message}`)
    assert.notEqual(r.value, null)
    assert.deepEqual([r.value?.local, r.value?.domain], c.want)
  } else {
    assert.equal(r.ok, false, `expected failure, got ${JSON.stringify(r)}`)
    if (r.ok) return
    assert.deepEqual({ code: r.code, enhanced: r.enhanced }, c.want)
    if (c.message) assert.match(r.message, c.message)
  }
}

/** Parses, then formats and parses again: a parsed Address must survive formatAddress unchanged. */
function roundTrip(path: string, opts: PathOptions): void {
  const r = parseForwardPath(path, opts)
  if (!r.ok) return
  const again = parseForwardPath(`<${formatAddress(r.value)}>`, { smtputf8: r.value.utf8, strict: true })
  assert.deepEqual(again, r, `round trip of ${path}`)
}

const D = 'victim.test'
const R = 'mx.ours.test'
const IP = '192.0.2.1'

// security.md §1.7 (nmap smtp-open-relay): never a different domain than the one after the last unquoted "@".
const relay: Case[] = [
  { name: 'plain foreign', path: `<relaytest@${D}>`, want: ['relaytest', D] },
  { name: 'percent hack to literal', path: `<relaytest%${D}@[${IP}]>`, want: [`relaytest%${D}`, `[${IP}]`] },
  { name: 'percent hack to us', path: `<relaytest%${D}@${R}>`, want: [`relaytest%${D}`, R] },
  { name: 'quoted, no domain', path: `<"relaytest@${D}">`, want: E501, message: /missing "@domain"/ },
  { name: 'quoted percent, no domain', path: `<"relaytest%${D}">`, want: E501 },
  { name: 'double @ to literal', path: `<relaytest@${D}@[${IP}]>`, want: E501, message: /"@" in domain/ },
  { name: 'quoted @ to literal', path: `<"relaytest@${D}"@[${IP}]>`, want: [`relaytest@${D}`, `[${IP}]`] },
  { name: 'double @ to us', path: `<relaytest@${D}@${R}>`, want: E501 },
  { name: 'source route via literal', path: `<@[${IP}]:relaytest@${D}>`, want: ['relaytest', D] },
  { name: 'source route via us', path: `<@${R}:relaytest@${D}>`, want: ['relaytest', D] },
  { name: 'bang path, no domain', path: `<${D}!relaytest>`, want: E501 },
  { name: 'bang path to literal', path: `<${D}!relaytest@[${IP}]>`, want: [`${D}!relaytest`, `[${IP}]`] },
  { name: 'bang path to us', path: `<${D}!relaytest@${R}>`, want: [`${D}!relaytest`, R] },
  { name: 'trailing dot', path: `<relaytest@${D}.>`, want: E501, message: /ends with "\."/ },
  { name: 'IPv4 literal', path: `<relaytest@[${IP}]>`, want: ['relaytest', `[${IP}]`] },
  { name: 'IPv6 literal', path: '<relaytest@[IPv6:2001:db8::1]>', want: ['relaytest', '[IPv6:2001:db8::1]'] },
  { name: 'IPv6 tag lower case', path: '<relaytest@[ipv6:2001:db8::1]>', want: ['relaytest', '[ipv6:2001:db8::1]'] },
  { name: 'upper case kept', path: '<RELAYTEST@VICTIM.TEST>', want: ['RELAYTEST', 'VICTIM.TEST'] },
  { name: 'punycode', path: '<relaytest@xn--bcher-kva.example>', want: ['relaytest', 'xn--bcher-kva.example'] },
  { name: 'mixed-case local domain', path: '<relaytest@Mx.Ours.TEST>', want: ['relaytest', 'Mx.Ours.TEST'] },
  { name: 'Postmaster', path: '<Postmaster>', want: ['Postmaster', undefined] },
  { name: 'POSTMASTER', path: '<POSTMASTER>', want: ['POSTMASTER', undefined] },
  { name: 'postmaster with domain', path: `<postmaster@${R}>`, want: ['postmaster', R] },
  { name: 'quoted postmaster is not special', path: '<"postmaster">', want: E501 },
]

// security.md §1.13, recipient side.
const malformed: Case[] = [
  { name: 'null path as recipient', path: '<>', want: E501, message: /null path/ },
  { name: 'unclosed', path: '<a@b', want: E501, message: /closing ">"/ },
  { name: 'double @', path: '<a@@b>', want: E501 },
  { name: 'comment', path: '<a(c)@b>', want: E501, message: /comments/ },
  { name: 'unterminated quote', path: '<"a\\"b@c>', want: E501, message: /unterminated quoted string/ },
  { name: 'octet 300', path: '<a@[300.1.1.1]>', want: E501, message: /IPv4/ },
  { name: 'IPv6 zz', path: '<a@[IPv6:zz]>', want: E501, message: /IPv6/ },
  { name: 'leading hyphen', path: '<a@-b.test>', want: E501, message: /starts with "-"/ },
  { name: 'leading dot', path: '<.a@b>', want: E501, message: /starts with "\."/ },
  { name: 'double dot', path: '<a..b@c>', want: E501, message: /consecutive dots/ },
  { name: 'source route x,y', path: '<@x,@y:a@b>', want: ['a', 'b'] },
  { name: 'source route without mailbox', path: '<@x,@y>', want: E501 },
  { name: 'source route missing @', path: '<@x,y:a@b>', want: E501, message: /source route/ },
  { name: 'source route bad hop', path: '<@-x:a@b>', want: E501, message: /source route/ },
  { name: 'general literal', path: '<a@[tag:content]>', want: E501, message: /general address literal/ },
  { name: 'junk after >', path: '<a@b> junk', want: E501 },
  { name: 'empty', path: '', want: E501, message: /missing address/ },
  { name: 'bare <', path: '<', want: E501 },
  { name: 'NUL', path: '<a\x00b@t.test>', want: E501, message: /control character U\+0000/ },
  { name: 'CR LF', path: '<a@t.test\r\nX: y>', want: E501, message: /control/ },
  { name: 'TAB', path: '<a\t@t.test>', want: E501 },
  { name: 'DEL', path: '<a\x7f@t.test>', want: E501 },
  { name: 'C1 NEL with SMTPUTF8', path: '<a\u0085@t.test>', want: E501, opts: UTF8, message: /U\+0085/ },
  { name: 'lone surrogate', path: '<a\ud800@t.test>', want: E501, opts: UTF8, message: /UTF-8/ },
  { name: 'NUL in quotes', path: '<"a\x00"@t.test>', want: E501 },
  { name: 'escaped NUL in quotes', path: '<"a\\\x00"@t.test>', want: E501 },
  { name: 'numeric TLD', path: '<a@192.0.2.1>', want: E501, message: /numeric top-level/ },
  { name: 'IPv6 zone id', path: '<a@[IPv6:fe80::1%eth0]>', want: E501 },
  { name: 'IPv4 leading zero (octal)', path: '<a@[010.0.0.1]>', want: E501 },
  { name: 'empty quoted local part', path: '<""@t.test>', want: E501, message: /empty/ },
  { name: 'missing local part', path: '<@t.test>', want: E501 },
  { name: 'missing domain', path: '<a@>', want: E501, message: /missing domain/ },
]

// security.md §1.12 and RFC 6531: UTF-8 only with SMTPUTF8; IDNs must be real U-labels.
const utf8: Case[] = [
  { name: 'UTF-8 local, no SMTPUTF8', path: '<jörg@t.test>', want: E553 },
  { name: 'UTF-8 domain, no SMTPUTF8', path: '<a@bücher.example>', want: E553 },
  { name: 'UTF-8 local with SMTPUTF8', path: '<jörg@t.test>', want: ['jörg', 't.test'], opts: UTF8 },
  { name: 'UTF-8 domain with SMTPUTF8', path: '<a@bücher.example>', want: ['a', 'bücher.example'], opts: UTF8 },
  { name: 'quoted UTF-8', path: '<"jö rg"@t.test>', want: ['jö rg', 't.test'], opts: UTF8 },
  { name: 'astral plane', path: '<😀@t.test>', want: ['😀', 't.test'], opts: UTF8 },
  { name: 'U+FFFD is valid UTF-8', path: '<a\ufffd@t.test>', want: ['a\ufffd', 't.test'], opts: UTF8 },
  { name: 'ideographic full stop', path: '<a@bücher\u3002de>', want: E501, opts: UTF8, message: /U-label/ },
  { name: 'fullwidth letters', path: '<a@ｅｘａｍｐｌｅ.com>', want: E501, opts: UTF8 },
  { name: 'fullwidth digits as IP', path: '<a@１２７.０.０.１>', want: E501, opts: UTF8 },
  { name: 'soft hyphen', path: '<a@\u00adb.test>', want: E501, opts: UTF8 },
  { name: 'zero-width joiner', path: '<a@a\u200db.test>', want: E501, opts: UTF8 },
  { name: 'escaped non-ASCII', path: '<"\\ö"@t.test>', want: E501, opts: UTF8, message: /escape/ },
]

// isemail (Dominic Sayers) and Postfix smtpd_token-style forms, as RFC 5321 paths.
const isemail: Case[] = [
  { name: 'dot-atom', path: '<first.last@iana.org>', want: ['first.last', 'iana.org'] },
  {
    name: '64-octet local',
    path: `<${'1234567890'.repeat(6)}1234@iana.org>`,
    want: [`${'1234567890'.repeat(6)}1234`, 'iana.org'],
  },
  { name: 'escaped quote', path: '<"first\\"last"@iana.org>', want: ['first"last', 'iana.org'] },
  { name: 'quoted @', path: '<"first@last"@iana.org>', want: ['first@last', 'iana.org'] },
  { name: 'escaped backslash', path: '<"first\\\\last"@iana.org>', want: ['first\\last', 'iana.org'] },
  { name: 'needless escape', path: '<"first\\last"@iana.org>', want: ['firstlast', 'iana.org'] },
  { name: 'IPv4 literal', path: '<first.last@[12.34.56.78]>', want: ['first.last', '[12.34.56.78]'] },
  { name: 'IPv6 v4-mapped', path: '<first.last@[IPv6:::12.34.56.78]>', want: ['first.last', '[IPv6:::12.34.56.78]'] },
  {
    name: 'IPv6 compressed',
    path: '<a@[IPv6:1111:2222:3333::4444:5555:6666]>',
    want: ['a', '[IPv6:1111:2222:3333::4444:5555:6666]'],
  },
  { name: 'all atext specials', path: "<!#$%&'*+-/=?^_`{}|~@iana.org>", want: ["!#$%&'*+-/=?^_`{}|~", 'iana.org'] },
  { name: 'escaped @', path: '<"Abc\\@def"@iana.org>', want: ['Abc@def', 'iana.org'] },
  { name: 'plus address', path: '<user+mailbox@iana.org>', want: ['user+mailbox', 'iana.org'] },
  {
    name: 'slash and equals',
    path: '<customer/department=shipping@iana.org>',
    want: ['customer/department=shipping', 'iana.org'],
  },
  { name: 'dollar', path: '<$A12345@iana.org>', want: ['$A12345', 'iana.org'] },
  { name: 'quoted space', path: '<"first last"@iana.org>', want: ['first last', 'iana.org'] },
  { name: 'quoted >', path: '<"a>b"@iana.org>', want: ['a>b', 'iana.org'] },
  { name: '63-octet label', path: `<a@${'x'.repeat(63)}.iana.org>`, want: ['a', `${'x'.repeat(63)}.iana.org`] },
  { name: 'single label', path: '<first.last@com>', want: ['first.last', 'com'] },
  {
    name: 'punycode TLD',
    path: '<test@xn--hxajbheg2az3al.xn--jxalpdlp>',
    want: ['test', 'xn--hxajbheg2az3al.xn--jxalpdlp'],
  },
  { name: 'escaped space', path: '<"test\\ blah"@iana.org>', want: ['test blah', 'iana.org'] },
  { name: 'quoted quotes', path: '<"\\"\\""@iana.org>', want: ['""', 'iana.org'] },
  { name: 'digit-led label', path: '<a@3com.example>', want: ['a', '3com.example'] },
  { name: 'no @', path: '<first.last>', want: E501, message: /missing "@domain"/ },
  { name: 'no local', path: '<@iana.org>', want: E501 },
  { name: 'empty domain', path: '<first.last@>', want: E501 },
  { name: 'backslash outside quotes', path: '<first\\@last@iana.org>', want: E501, message: /"\\"/ },
  { name: '64-octet label', path: `<a@${'x'.repeat(64)}.iana.org>`, want: E501, message: /63/ },
  { name: 'literal leading dot', path: '<first.last@[.12.34.56.78]>', want: E501 },
  { name: 'literal octet 789', path: '<first.last@[12.34.56.789]>', want: E501 },
  { name: 'IPv6 7 groups', path: '<a@[IPv6:1111:2222:3333:4444:5555:6666:7777]>', want: E501 },
  { name: 'IPv6 9 groups', path: '<a@[IPv6:1111:2222:3333:4444:5555:6666:7777:8888:9999]>', want: E501 },
  { name: 'IPv6 two ::', path: '<a@[IPv6:1111:2222::3333::4444:5555:6666]>', want: E501 },
  { name: 'IPv6 bad hex', path: '<a@[IPv6:1111:2222:333x::4444:5555]>', want: E501 },
  { name: 'IPv6 5-digit group', path: '<a@[IPv6:1111:2222:33333::4444:5555]>', want: E501 },
  { name: 'numeric TLD', path: '<first.last@example.123>', want: E501 },
  { name: 'text after quote', path: '<"Abc"def"@iana.org>', want: E501, message: /after quoted string/ },
  { name: 'quote inside atom', path: '<test"test"@iana.org>', want: E501 },
  { name: 'trailing dot local', path: '<first.last.@iana.org>', want: E501, message: /ends with "\."/ },
  { name: 'label ends with -', path: '<first.last@exampl-.com>', want: E501, message: /ends with "-"/ },
  { name: 'domain ends with -', path: '<test@iana.org->', want: E501 },
  { name: 'unterminated literal', path: '<test@[1.2.3.4>', want: E501, message: /unterminated address literal/ },
  { name: 'text after literal', path: '<test@[1.2.3.4]x>', want: E501 },
  { name: 'space in domain', path: '<test@iana .org>', want: E501, message: /U\+0020/ },
  { name: 'underscore in domain', path: '<test@iana_org.test>', want: E501 },
  { name: 'space in literal', path: '<test@[ 1.2.3.4]>', want: E501 },
  { name: 'unquoted space', path: '<first last@iana.org>', want: E501 },
  { name: 'brackets nested', path: '<<a@b>>', want: E501 },
  { name: 'domain starts with dot', path: '<a@.iana.org>', want: E501, message: /starts with "\."/ },
]

// RFC 5321 §4.5.3.1: local part 64, domain 255, path 256 octets (UTF-8 counted).
const l63 = (c: string) => c.repeat(63)
const domain189 = `${l63('a')}.${l63('b')}.${'c'.repeat(61)}` // 64 + 1 + 189 + 2 = 256
const limits: Case[] = [
  { name: 'local 64', path: `<${'a'.repeat(64)}@t.test>`, want: ['a'.repeat(64), 't.test'] },
  { name: 'local 65', path: `<${'a'.repeat(65)}@t.test>`, want: E501, message: /local part exceeds 64/ },
  {
    name: 'local 64 octets of UTF-8',
    path: `<${'é'.repeat(32)}@t.test>`,
    want: ['é'.repeat(32), 't.test'],
    opts: UTF8,
  },
  {
    name: 'local 65 octets of UTF-8',
    path: `<${'é'.repeat(32)}a@t.test>`,
    want: E501,
    opts: UTF8,
    message: /local part/,
  },
  { name: 'quoted local 64 with quotes', path: `<"${'a '.repeat(31)}"@t.test>`, want: ['a '.repeat(31), 't.test'] },
  { name: 'quoted local 65 with quotes', path: `<"${'a '.repeat(31)}a"@t.test>`, want: E501, message: /local part/ },
  { name: 'path 256', path: `<${'a'.repeat(64)}@${domain189}>`, want: ['a'.repeat(64), domain189] },
  { name: 'path 257', path: `<${'a'.repeat(64)}@${domain189}c>`, want: E501, message: /path exceeds 256/ },
  {
    name: 'path 257 in UTF-8 octets',
    path: `<${'é'.repeat(32)}@${domain189}>`,
    want: ['é'.repeat(32), domain189],
    opts: UTF8,
  },
  { name: 'path 258 in UTF-8 octets', path: `<${'é'.repeat(32)}a@${domain189}>`, want: E501, opts: UTF8 },
  {
    name: 'domain 252 (path 256)',
    path: `<a@${l63('a')}.${l63('b')}.${l63('c')}.${'d'.repeat(60)}>`,
    want: ['a', `${l63('a')}.${l63('b')}.${l63('c')}.${'d'.repeat(60)}`],
  },
  // A 255-octet domain cannot fit in a 256-octet path ("<" "a" "@" ">" take 4): the path limit answers.
  {
    name: 'domain 255',
    path: `<a@${l63('a')}.${l63('b')}.${l63('c')}.${'d'.repeat(63)}>`,
    want: E501,
    message: /path exceeds/,
  },
  {
    name: 'domain 256',
    path: `<a@${l63('a')}.${l63('b')}.${l63('c')}.${'d'.repeat(63)}e>`,
    want: E501,
    message: /exceeds/,
  },
  { name: 'unbracketed 254 + <> = 256', path: `${'a'.repeat(64)}@${domain189}`, want: ['a'.repeat(64), domain189] },
  { name: 'unbracketed 255 + <> = 257', path: `${'a'.repeat(64)}@${domain189}c`, want: E501, message: /path/ },
  { name: '64 KB', path: `<${'a'.repeat(65536)}@t.test>`, want: E501, message: /path exceeds/ },
]

describe('parseForwardPath', () => {
  for (const [group, cases] of Object.entries({ relay, malformed, utf8, isemail, limits })) {
    describe(group, () => {
      for (const c of cases) {
        it(c.name, () => {
          const opts = c.opts ?? LENIENT
          check(parseForwardPath(c.path, opts), c)
          roundTrip(c.path, opts)
        })
      }
    })
  }

  it('strict mode refuses a path without brackets', () => {
    check(parseForwardPath('a@b.test', STRICT), { name: '', path: '', want: E501, message: /enclosed/ })
    check(parseForwardPath('<a@b.test>', STRICT), { name: '', path: '', want: ['a', 'b.test'] })
  })

  it('marks UTF-8 addresses', () => {
    assert.deepEqual(parseForwardPath('<jörg@t.test>', UTF8), {
      ok: true,
      value: { local: 'jörg', domain: 't.test', utf8: true },
    })
    assert.deepEqual(parseForwardPath('<a@t.test>', UTF8), {
      ok: true,
      value: { local: 'a', domain: 't.test', utf8: false },
    })
  })
})

describe('parseReversePath', () => {
  const cases: Case[] = [
    { name: 'null reverse path', path: '<>', want: ['', ''] },
    { name: 'mailbox', path: '<a@t.test>', want: ['a', 't.test'] },
    { name: 'bare mailbox (lenient)', path: 'a@b', want: ['a', 'b'] },
    {
      name: 'postmaster has no special meaning',
      path: '<postmaster>',
      want: S501,
      message: /^Bad sender address syntax/,
    },
    { name: 'source route dropped', path: '<@x,@y:a@b>', want: ['a', 'b'] },
    { name: 'syntax error code', path: '<a..b@c>', want: S501 },
    { name: 'too long code', path: `<${'a'.repeat(65)}@t.test>`, want: S501, message: /^Sender address too long/ },
    { name: 'UTF-8 without SMTPUTF8', path: '<j\u00f6rg@t.test>', want: E553, message: /sender/ },
    { name: 'NUL', path: '<a\x00b@t.test>', want: S501 },
  ]
  for (const c of cases) {
    it(c.name, () => {
      const r = parseReversePath(c.path, c.opts ?? LENIENT)
      if (c.path === '<>') return assert.deepEqual(r, { ok: true, value: null })
      check(r, c)
    })
  }
  it('<> with strict', () => assert.deepEqual(parseReversePath('<>', STRICT), { ok: true, value: null }))
})

describe('splitPathAndParams', () => {
  const cases = [
    { name: 'path and params', rest: 'FROM:<a@b> SIZE=10', want: ['<a@b>', 'SIZE=10'] },
    { name: 'lower-case keyword', rest: 'from:<a@b>', want: ['<a@b>', ''] },
    { name: 'TO', rest: 'TO:<a@b> NOTIFY=NEVER', kw: 'TO', want: ['<a@b>', 'NOTIFY=NEVER'] },
    { name: 'space after colon', rest: 'FROM: <a@b>', want: ['<a@b>', ''] },
    { name: 'space after colon, strict', rest: 'FROM: <a@b>', strict: true, want: S501 },
    { name: 'no brackets', rest: 'FROM:a@b SIZE=1', want: ['a@b', 'SIZE=1'] },
    { name: 'no brackets, strict (the path parser refuses it)', rest: 'FROM:a@b', strict: true, want: ['a@b', ''] },
    { name: 'quoted space and >', rest: 'FROM:<"a> b"@c> BODY=8BITMIME', want: ['<"a> b"@c>', 'BODY=8BITMIME'] },
    { name: 'quoted space, no brackets', rest: 'FROM:"a b"@c SIZE=1', want: ['"a b"@c', 'SIZE=1'] },
    { name: 'escaped quote', rest: 'FROM:<"a\\">"@c>', want: ['<"a\\">"@c>', ''] },
    { name: 'null path', rest: 'FROM:<>', want: ['<>', ''] },
    { name: 'extra spaces before params', rest: 'TO:<a@b>   NOTIFY=NEVER', kw: 'TO', want: ['<a@b>', 'NOTIFY=NEVER'] },
    { name: 'leading space (MAIL  FROM)', rest: ' FROM:<a@b>', want: ['<a@b>', ''] },
    { name: 'leading space, strict', rest: ' FROM:<a@b>', strict: true, want: { code: 501, enhanced: '5.5.4' } },
    { name: 'params glued to path', rest: 'FROM:<a@b>SIZE=1', want: S501 },
    { name: 'unclosed', rest: 'FROM:<a@b', want: S501 },
    { name: 'unterminated quote', rest: 'FROM:<"a\\"b@c>', want: S501 },
    { name: 'unterminated quote (recipient)', rest: 'TO:<"a\\"b@c>', kw: 'TO', want: E501 },
    { name: 'missing colon', rest: 'FROM <a@b>', want: { code: 501, enhanced: '5.5.4' } },
    { name: 'wrong keyword', rest: 'TO:<a@b>', want: { code: 501, enhanced: '5.5.4' } },
    { name: 'empty after colon', rest: 'FROM:', want: ['', ''] },
    { name: 'junk after path', rest: 'FROM:<a@b> junk', want: ['<a@b>', 'junk'] },
  ] as const
  for (const c of cases) {
    it(c.name, () => {
      const opts = { keyword: 'kw' in c ? c.kw : 'FROM', strict: 'strict' in c ? c.strict : false } as const
      const r = splitPathAndParams(c.rest, opts)
      if (Array.isArray(c.want)) assert.deepEqual(r, { ok: true, value: { path: c.want[0], params: c.want[1] } })
      else assert.deepEqual(r.ok ? r : { code: r.code, enhanced: r.enhanced }, c.want)
    })
  }
})

describe('normalizeDomain', () => {
  const cases = [
    ['ASCII lower-cased', 'Mx.Ours.TEST', 'mx.ours.test'],
    ['IDN to A-labels', 'Bücher.Example', 'xn--bcher-kva.example'],
    ['ß kept (IDNA2008)', 'ß.test', 'xn--zca.test'],
    ['punycode lower-cased', 'XN--BCHER-KVA.example', 'xn--bcher-kva.example'],
    ['IPv4 literal', '[192.0.2.1]', '[192.0.2.1]'],
    ['IPv6 literal', '[ipv6:2001:DB8::1]', '[IPv6:2001:db8::1]'],
  ] as const
  for (const [name, input, want] of cases) it(name, () => assert.equal(normalizeDomain(input), want))
})

// security.md §1.15: inputs up to 64 KB through split and parse, in time linear in their length.
describe('ReDoS', () => {
  const inputs = [
    { name: "MAIL FROM:<'a.'x>", kw: 'FROM', rest: (n: number) => `FROM:<${'a.'.repeat(n / 2)}>` },
    { name: 'RCPT TO:<"\\a x>', kw: 'TO', rest: (n: number) => `TO:<"${'\\a'.repeat(n / 2)}>` },
    { name: "RCPT TO:<a@'a-'x>", kw: 'TO', rest: (n: number) => `TO:<a@${'a-'.repeat(n / 2)}>` },
    { name: "'<'x", kw: 'TO', rest: (n: number) => `TO:${'<'.repeat(n)}` },
    { name: 'unbracketed quotes', kw: 'FROM', rest: (n: number) => `FROM:${'"a" '.repeat(n / 4)}` },
    { name: 'source route hops', kw: 'TO', rest: (n: number) => `TO:<${'@a,'.repeat(n / 3)}:a@b>` },
    { name: 'spaces before params', kw: 'TO', rest: (n: number) => `TO:<a@b>${' '.repeat(n)}x` },
  ] as const
  for (const c of inputs) {
    it(c.name, () => {
      assertLinear(c.name, c.rest, (rest) => {
        const s = splitPathAndParams(rest, { keyword: c.kw, strict: false })
        const path = s.ok ? s.value.path : rest.slice(c.kw.length + 1)
        parseReversePath(path, UTF8)
        parseForwardPath(path, UTF8)
      })
    })
  }
})
