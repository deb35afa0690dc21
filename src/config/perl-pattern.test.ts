import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from './config-error.ts'
import { compilePerlPattern, PatternError, perlPatternAt, translatePerlPattern } from './perl-pattern.ts'

describe('Perl patterns in linear time', () => {
  const matches = [
    {
      name: 'qpsmtpd badmailfrom sample',
      re: '^streamsendbouncer@.*\\.mailengine1\\.com$',
      yes: ['streamsendbouncer@x.mailengine1.com'],
      no: ['streamsendbouncer@mailengine1.com.evil'],
    },
    {
      name: '\\@ is a literal @',
      re: '^admin\\@spam\\.example$',
      yes: ['admin@spam.example'],
      no: ['admin-spam.example'],
    },
    { name: '\\A and \\z', re: '\\Aroot\\@', yes: ['root@host'], no: ['xroot@host'] },
    {
      name: '\\Z before a final newline or at the end',
      re: 'example\\.com\\Z',
      yes: ['a@example.com', 'a@example.com\n'],
      no: ['a@example.com.x'],
    },
    { name: '(?i) inline', re: '(?i)^SPAM@', yes: ['spam@x', 'SPAM@x'], no: ['ham@x'] },
    { name: '(?i:...) group', re: '^(?i:ab)c$', yes: ['ABc'], no: ['ABC'] },
    { name: '(?^i:...) resets to defaults', re: '(?^i:ab)', yes: ['AB'], no: ['a b'] },
    { name: '(?#comment) dropped', re: 'a(?#note)b', yes: ['ab'], no: ['a b'] },
    { name: 'named group', re: '^(?<user>[a-z]+)@', yes: ['abc@x'], no: ['1@x'] },
    { name: 'lookbehind', re: '(?<!www\\.)example\\.com$', yes: ['u@example.com'], no: ['u@www.example.com'] },
    { name: '\\Q...\\E quoting', re: '\\Qa.b\\E$', yes: ['xa.b'], no: ['xaxb'] },
    { name: '\\h horizontal space', re: 'a\\hb', yes: ['a b', 'a\tb'], no: ['ab'] },
    { name: '\\N any but newline', re: '^a\\Nc$', yes: ['abc'], no: ['a\nc'] },
    { name: 'POSIX class', re: '^[[:digit:]]+$', yes: ['123'], no: ['12a'] },
    { name: 'lazy quantifier', re: '^a.+?@', yes: ['abc@x'], no: ['a@x'] },
    { name: 'percent hack pattern', re: '%', yes: ['u%remote@local'], no: ['u@local'] },
    { name: 'bang path pattern', re: '!', yes: ['host!u@local'], no: ['u@local'] },
  ]
  for (const t of matches)
    it(t.name, () => {
      const p = compilePerlPattern(t.re)
      for (const s of t.yes) assert.equal(p.test(s), true, `${t.re} =~ ${JSON.stringify(s)}`)
      for (const s of t.no) assert.equal(p.test(s), false, `${t.re} !~ ${JSON.stringify(s)}`)
    })

  it('Perl /i is case-insensitive matching', () => {
    assert.equal(compilePerlPattern('^BOB@', { caseInsensitive: true }).test('bob@x'), true)
    assert.equal(compilePerlPattern('^BOB@').test('bob@x'), false)
  })

  it('a catastrophic pattern answers at once against a long input', () => {
    // A backtracking engine (Perl, JavaScript's RegExp) takes 2^n steps here and never returns.
    const input = `${'a'.repeat(100_000)}!@example.com`
    assert.equal(compilePerlPattern('(a+)+$').test(input), false)
    assert.equal(compilePerlPattern('^(a|aa)+$').test(input), false)
    assert.equal(compilePerlPattern('(.*a){20}').test(input), true)
    assert.equal(compilePerlPattern('^(([a-z])+.)+[A-Z]([a-z])+$').test(input), false)
  })

  const refused = [
    { re: 'a(?=b)', why: /lookahead \(\?= needs backtracking/ },
    { re: 'a(?!b)', why: /lookahead \(\?! needs backtracking/ },
    { re: '(a)\\1', why: /\\1 \(backreference\) needs backtracking/ },
    { re: '(?>a+)b', why: /atomic groups/ },
    { re: 'a++b', why: /possessive quantifiers/ },
    { re: 'a{2}+b', why: /possessive quantifiers/ },
    { re: '(?x) a b', why: /the x flag/ },
    { re: '(?{ system("rm") })', why: /embedded code/ },
    { re: '(??{ 1 })', why: /embedded code|unknown group/ },
    { re: '(a)(?1)', why: /recursion/ },
    { re: '\\G', why: /\\G/ },
    { re: '[a-', why: /unterminated character class|missing closing/ },
    { re: 'a{1001}', why: /invalid repeat count/ },
    { re: '(ab', why: /missing closing \)/ },
    { re: 'x\\', why: /trailing backslash/ },
  ]
  for (const t of refused)
    it(`refuses ${t.re}`, () => {
      assert.throws(
        () => compilePerlPattern(t.re),
        (e: unknown) => e instanceof PatternError && t.why.test(e.message),
      )
    })

  it('lazy quantifiers followed by + are not possessive', () => {
    assert.equal(translatePerlPattern('a*?+'), 'a*?+')
  })

  it('names the file and line of a refused pattern', () => {
    assert.throws(
      () => perlPatternAt({ text: 'x', file: '/etc/qpsmtpd/badmailfrom', line: 7 }, '(a)\\1'),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.code === 'SMTPD_ERR_CONFIG_PATTERN' &&
        e.message === '/etc/qpsmtpd/badmailfrom:7: pattern (a)\\1: \\1 (backreference) needs backtracking',
    )
  })
})

describe('PerlPattern.groups', () => {
  it('gives the capture groups of the first match, as $1, $2', () => {
    const p = compilePerlPattern('^ALERT: \\[([^\\]]+)\\s+(\\w+)?\\]')
    assert.deepEqual(p.groups('ALERT: [Eicar-Test-Signature virus] /tmp/x'), ['Eicar-Test-Signature', 'virus'])
    assert.deepEqual(p.groups('ALERT: [Eicar ]'), ['Eicar', ''])
    assert.equal(p.groups('nothing here'), undefined)
  })
})
