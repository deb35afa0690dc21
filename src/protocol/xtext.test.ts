import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { assertLinear } from '../../test/linear-time.ts'
import { decodeUtf8AddrXtext, decodeXtext, encodeXtext, isXtext } from './xtext.ts'

const cases: readonly (readonly [name: string, input: string, want: string | RegExp])[] = [
  ['plain', 'abc', 'abc'],
  ['empty', '', ''],
  ['encoded plus', 'a+2Bb', 'a+b'],
  ['encoded equals', 'a+3Db', 'a=b'],
  ['encoded space', 'a+20b', 'a b'],
  ['all xchars', '!"#$%&\'()*,-./09:;<>?@AZ[\\]^_`az{|}~', '!"#$%&\'()*,-./09:;<>?@AZ[\\]^_`az{|}~'],
  ['UTF-8 octets', 'j+C3+B6rg', 'jörg'],
  ['encoded tilde (needless)', '+7E', '~'],
  // security.md §1.5: Exim CVE-2020-28021 and friends.
  ['CR LF header injection', 'x+0D+0AX-Inj:+201', /control character \+0D/],
  ['LF dot LF', 'x+0A+2E+0A', /control character \+0A/],
  ['NUL', 'a+00', /control/],
  ['TAB', 'a+09', /control/],
  ['DEL', 'a+7F', /control/],
  ['C1 NEL as UTF-8', 'a+C2+85', /control/],
  ['C1 CSI as UTF-8', '+C2+9B', /control/],
  ['lone 0x85 (not UTF-8)', 'a+85', /UTF-8/],
  ['overlong /', '+C0+AF', /UTF-8/],
  ['UTF-16 surrogate as UTF-8', '+ED+A0+80', /UTF-8/],
  ['0xFF', '+FF', /UTF-8/],
  ['lower-case hex', 'x+0d', /two uppercase hex/],
  ['one hex digit', 'x+2', /two uppercase hex/],
  ['plus at end', 'x+', /two uppercase hex/],
  ['non-hex', 'x+GG', /two uppercase hex/],
  ['raw equals', 'a=b', /"="/],
  ['raw space', 'a b', /33\.\.126/],
  ['raw CR', 'a\rb', /33\.\.126/],
  ['raw non-ASCII', 'jörg', /33\.\.126/],
]

describe('decodeXtext', () => {
  for (const [name, input, want] of cases) {
    it(name, () => {
      const r = decodeXtext(input)
      if (typeof want === 'string') assert.deepEqual(r, { ok: true, value: want })
      else {
        assert.equal(r.ok, false)
        if (!r.ok) {
          assert.equal(r.code, 501)
          assert.equal(r.enhanced, '5.5.4')
          assert.match(r.message, want)
        }
      }
    })
  }

  it('decodes in time linear in the length (up to 64 KB)', () => {
    assertLinear(
      'decodeXtext',
      (n) => 'a+41'.repeat(n / 4),
      (s) => decodeXtext(s),
    )
  })
})

function expectDecoded(r: ReturnType<typeof decodeXtext>, want: string | RegExp): void {
  if (typeof want === 'string') assert.deepEqual(r, { ok: true, value: want })
  else {
    assert.equal(r.ok, false, JSON.stringify(r))
    if (!r.ok) assert.match(r.message, want)
  }
}

describe('decodeXtext with raw UTF-8 (RFC 6531 §3.3)', () => {
  const utf8Cases: readonly (readonly [name: string, input: string, want: string | RegExp])[] = [
    ['raw', 'üser@x', 'üser@x'],
    ['raw beside encoded', '+C3+BCü😀', 'üü😀'],
    ['raw C1 control', 'a\u0085', /control/],
    ['raw space still refused', 'a b', /33\.\.126/],
  ]
  for (const [name, input, want] of utf8Cases) it(name, () => expectDecoded(decodeXtext(input, { utf8: true }), want))
})

describe('decodeUtf8AddrXtext (RFC 6533 §3)', () => {
  const cases6533: readonly (readonly [name: string, input: string, want: string | RegExp, utf8?: boolean])[] = [
    ['plain', 'user@x', 'user@x'],
    ['utf-8-addr-xtext', 'j\\x{F6}rg@x', 'jörg@x'],
    ['lower-case hex, astral', '\\x{1f600}@x', '😀@x'],
    ['xtext specials', '\\x{2B}\\x{3D}\\x{5C}', '+=\\'],
    ['utf-8-addr-unitext', 'üser@x', 'üser@x', true],
    ['unitext needs utf8', 'üser@x', /33\.\.126/],
    ['literal plus and backslash (Postfix)', 'a+b\\y', 'a+b\\y'],
    ['space', 'a b', /33\.\.126/],
    ['encoded NUL', '\\x{0}', /control/],
    ['encoded CR', '\\x{D}', /control/],
    ['encoded DEL', '\\x{7F}', /control/],
    ['encoded C1', '\\x{9B}', /control/],
    ['raw C1', 'a\u0085', /33\.\.126/, true],
    ['surrogate', '\\x{DFFF}', /scalar/],
    ['too large', '\\x{110000}', /scalar/],
    ['no digits', '\\x{}', /hex digits/],
    ['not hex', '\\x{G}', /hex digits/],
    ['unterminated', '\\x{41', /hex digits/],
  ]
  for (const [name, input, want, utf8] of cases6533)
    it(name, () => expectDecoded(decodeUtf8AddrXtext(input, { utf8: utf8 ?? false }), want))
})

describe('isXtext', () => {
  for (const [name, input] of cases) {
    // Syntax only: the control-character and UTF-8 refusals belong to decodeXtext.
    const d = decodeXtext(input)
    const syntaxOk = d.ok || !/uppercase hex|"="|33\.\.126/.test(d.message)
    it(name, () => assert.equal(isXtext(input), syntaxOk))
  }
})

describe('encodeXtext', () => {
  const enc = [
    ['plain', 'abc', 'abc'],
    ['plus, equals, space', 'a+b=c d', 'a+2Bb+3Dc+20d'],
    ['CR LF', '\r\n', '+0D+0A'],
    ['UTF-8', 'jö', 'j+C3+B6'],
    ['astral', '😀', '+F0+9F+98+80'],
  ] as const
  for (const [name, input, want] of enc) it(name, () => assert.equal(encodeXtext(input), want))

  it('round-trips printable text', () => {
    for (const s of ['a+b=c d', 'jörg@bücher.example', '"quoted"@x', '😀 +', '~!#']) {
      assert.deepEqual(decodeXtext(encodeXtext(s)), { ok: true, value: s })
      assert.ok(isXtext(encodeXtext(s)))
    }
  })
})
