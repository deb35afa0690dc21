/**
 * Perl patterns from qpsmtpd's config files (badmailfrom, badrcptto, badhelo, rcpt_regexp),
 * matched in linear time by RE2 (re2js), so that no pattern, however written, can stall the
 * server on a crafted address: `(a+)+$` against a long address answers at once.
 *
 * Perl syntax RE2 lacks is translated where the meaning is the same for one-line inputs
 * (`\Z`, `\e`, `\N`, `\h`, `\v`, `\R`, `(?#...)`, `(?<name>`); what needs backtracking
 * (lookahead, backreferences, atomic groups, possessive quantifiers, recursion, code) is
 * refused with the reason, for the caller to report at file:line. Lookbehinds run on re2js's
 * linear-time lookbehind engine.
 */
import { RE2JS } from 're2js'
import type { ConfigLine } from './config-dir.ts'
import { ConfigError } from './config-error.ts'

export interface PerlPattern {
  /** The pattern as the operator wrote it. */
  readonly source: string
  /** Perl's `$input =~ /pattern/`: true when the pattern matches anywhere in the input. */
  test(input: string): boolean
  /** The first match's capture groups (`$1`, `$2`, ...; '' for a group that took no part), or undefined. */
  groups(input: string): readonly string[] | undefined
}

export class PatternError extends Error {}

const refuse = (why: string): never => {
  throw new PatternError(why)
}

// Perl's \h and \v as RE2 class contents (perlrecharclass "Whitespace").
const HSPACE = '\\t \\x{a0}\\x{1680}\\x{180e}\\x{2000}-\\x{200a}\\x{202f}\\x{205f}\\x{3000}'
const VSPACE = '\\n\\x0b\\f\\r\\x{85}\\x{2028}\\x{2029}'

/** Escapes that mean the same in RE2 (letters; punctuation escapes are always literal). */
const SAME_ESCAPES = new Set(['A', 'z', 'b', 'B', 'd', 'D', 'w', 'W', 's', 'S', 't', 'n', 'r', 'f', 'a', 'x', 'p', 'P'])

const ESCAPE_REASONS: Readonly<Record<string, string>> = {
  G: '\\G (end of the previous match) has no meaning here',
  K: '\\K (keep) needs backtracking',
  X: '\\X (extended grapheme cluster) is not supported',
  C: '\\C (single octet) is not supported',
  g: '\\g (backreference) needs backtracking',
  k: '\\k (named backreference) needs backtracking',
  o: '\\o{} octal escapes are not supported: write \\x{...}',
  l: '\\l, \\u, \\L, \\U (case changes) are not supported',
  u: '\\l, \\u, \\L, \\U (case changes) are not supported',
  L: '\\l, \\u, \\L, \\U (case changes) are not supported',
  U: '\\l, \\u, \\L, \\U (case changes) are not supported',
  c: '\\c (control character) escapes are not supported: write \\x..',
}

/** Translates a Perl pattern into RE2 syntax; throws PatternError with the reason. */
export function translatePerlPattern(perl: string): string {
  let out = ''
  let i = 0
  let inClass = false
  let afterQuantifier = false
  while (i < perl.length) {
    const c = perl[i] as string
    if (c === '\\') {
      const [text, next] = translateEscape(perl, i, inClass)
      out += text
      i = next
      afterQuantifier = false
      continue
    }
    if (inClass) {
      const posix = /^\[:\^?[a-z]+:\]/.exec(perl.slice(i))
      if (posix) {
        out += posix[0]
        i += posix[0].length
        continue
      }
      if (c === ']') inClass = false
      out += c
      i++
      continue
    }
    if (c === '[') {
      inClass = true
      out += c
      i++
      // A `]` (or `^]`) right after the opening bracket is a literal member.
      if (perl[i] === '^') out += perl[i++]
      if (perl[i] === ']') out += perl[i++]
      afterQuantifier = false
      continue
    }
    if (c === '(' && perl[i + 1] === '?') {
      const [text, next] = translateGroup(perl, i)
      out += text
      i = next
      afterQuantifier = false
      continue
    }
    if (c === '+' && afterQuantifier) refuse('possessive quantifiers (*+, ++, ?+, {n}+) need backtracking')
    const quantifier = c === '*' || c === '+' || c === '?' || (c === '}' && /\{\d*,?\d*$/.test(out))
    out += c
    i++
    // A `?` after a quantifier makes it lazy, which RE2 has; only then does a following `+` stop being possessive.
    afterQuantifier = quantifier && !(c === '?' && afterQuantifier)
  }
  if (inClass) refuse('unterminated character class [')
  return out
}

function translateEscape(perl: string, i: number, inClass: boolean): [string, number] {
  const e = perl[i + 1]
  if (e === undefined) return refuse('trailing backslash')
  if (!/[A-Za-z0-9]/.test(e)) return [`\\${e}`, i + 2]
  if (SAME_ESCAPES.has(e) || e === '0') return [`\\${e}`, i + 2]
  if (e === 'Q') {
    // \Q...\E quotes literally up to \E or the end (RE2 has it too, but the quoted text must not be translated).
    const end = perl.indexOf('\\E', i + 2)
    const quoted = end < 0 ? perl.slice(i + 2) : perl.slice(i + 2, end)
    return [`\\Q${quoted}\\E`, end < 0 ? perl.length : end + 2]
  }
  if (e === 'E') return ['', i + 2]
  if (/[1-9]/.test(e)) return refuse(`\\${e} (backreference) needs backtracking`)
  if (e === 'e') return ['\\x1b', i + 2]
  if (e === 'Z') {
    if (inClass) return refuse('\\Z inside a character class')
    // End of input or before a final newline; inputs here are single lines.
    return ['\\n?\\z', i + 2]
  }
  if (e === 'N' && perl[i + 2] !== '{') return [inClass ? refuse('\\N inside a character class') : '[^\\n]', i + 2]
  if (e === 'h' || e === 'v') {
    const set = e === 'h' ? HSPACE : VSPACE
    return [inClass ? set : `[${set}]`, i + 2]
  }
  if (e === 'H' || e === 'V') {
    if (inClass) return refuse(`\\${e} inside a character class is not supported`)
    return [`[^${e === 'H' ? HSPACE : VSPACE}]`, i + 2]
  }
  if (e === 'R') {
    if (inClass) return refuse('\\R inside a character class')
    return [`(?:\\r\\n|[${VSPACE}])`, i + 2]
  }
  return refuse(ESCAPE_REASONS[e] ?? `unknown escape \\${e}`)
}

function translateGroup(perl: string, i: number): [string, number] {
  const rest = perl.slice(i + 2)
  if (rest.startsWith('#')) {
    const end = perl.indexOf(')', i)
    if (end < 0) refuse('unterminated (?# comment')
    return ['', end + 1]
  }
  if (rest.startsWith('=') || rest.startsWith('!')) return refuse(`lookahead (?${rest[0]} needs backtracking`)
  if (rest.startsWith('<=') || rest.startsWith('<!')) return [`(?${rest.slice(0, 2)}`, i + 4]
  const named = /^(?:P?<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)')/.exec(rest)
  if (named) return [`(?P<${named[1] ?? named[2]}>`, i + 2 + named[0].length]
  if (rest.startsWith('>')) return refuse('atomic groups (?> need backtracking')
  if (rest.startsWith('|')) return refuse('branch reset (?| is not supported')
  if (/^(?:P=|P>|&|R\)|[+-]?\d)/.test(rest)) return refuse('backreferences and recursion need backtracking')
  if (rest.startsWith('(')) return refuse('conditionals (?( need backtracking')
  if (rest.startsWith('{') || rest.startsWith('?{')) return refuse('embedded code is not allowed')
  const flags = /^\^?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])/.exec(rest)
  if (flags) {
    const on = flags[1] ?? ''
    const off = flags[2] ?? ''
    for (const f of on + off)
      if (!'ims'.includes(f))
        refuse(
          f === 'x'
            ? 'the x flag (extended mode) is not supported: write the pattern without spaces and comments'
            : `the ${f} flag is not supported`,
        )
    // `(?^...)` starts from Perl's defaults: i, m and s off unless listed.
    const caretOff = rest.startsWith('^') ? [...'ims'].filter((f) => !on.includes(f)).join('') : ''
    const allOff = off + caretOff
    const text =
      on === '' && allOff === '' ? (flags[3] === ':' ? '(?:' : '') : `(?${on}${allOff ? `-${allOff}` : ''}${flags[3]}`
    return [text, i + 2 + flags[0].length]
  }
  if (rest.startsWith(':')) return ['(?:', i + 3]
  return refuse(`unknown group syntax (?${rest.slice(0, 1)}`)
}

/**
 * Compiles a Perl pattern for linear-time matching. `caseInsensitive` is Perl's `/i`.
 * Throws PatternError naming what cannot be matched in linear time or is malformed.
 */
export function compilePerlPattern(source: string, opts: { readonly caseInsensitive?: boolean } = {}): PerlPattern {
  const re2 = translatePerlPattern(source)
  let compiled: RE2JS
  try {
    compiled = RE2JS.compile(re2, RE2JS.LOOKBEHINDS | (opts.caseInsensitive ? RE2JS.CASE_INSENSITIVE : 0))
  } catch (e) {
    throw new PatternError((e as Error).message.replace(/^error parsing regexp: /, ''))
  }
  return {
    source,
    test: (input) => compiled.test(input),
    groups: (input) => {
      const m = compiled.matcher(input)
      if (!m.find()) return undefined
      return Array.from({ length: m.groupCount() }, (_, i) => m.group(i + 1) ?? '')
    },
  }
}

/** compilePerlPattern for a config line: a refusal becomes a ConfigError at the line's file:line. */
export function perlPatternAt(
  at: ConfigLine,
  source: string,
  opts: { readonly caseInsensitive?: boolean } = {},
): PerlPattern {
  try {
    return compilePerlPattern(source, opts)
  } catch (e) {
    if (!(e instanceof PatternError)) throw e
    throw new ConfigError('SMTPD_ERR_CONFIG_PATTERN', at.file, at.line, `pattern ${source}: ${e.message}`)
  }
}
