import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeXtext, encodeXtext, isXtext } from './xtext.ts'

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

  it('decodes 64 KB in well under 10 ms', () => {
    const big = 'a+41'.repeat(16384)
    let best = Number.POSITIVE_INFINITY
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now()
      decodeXtext(big)
      best = Math.min(best, performance.now() - t0)
    }
    assert.ok(best < 10, `${best} ms`)
  })
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
