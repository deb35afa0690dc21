/**
 * qmail-style address lists with qpsmtpd's pattern extension (badmailfrom, badrcptto): each
 * line is `entry [reason...]`, where the entry is a full address, `@domain` (every address at
 * that domain), or a Perl pattern (an entry with one of `/ ^ $ * + ! % ? \`, qpsmtpd's test)
 * matched against `user@domain` in lower case. The first matching line in file order wins.
 * Addresses and domains are looked up in hash sets; only pattern lines reach the regex engine,
 * which matches in linear time (perl-pattern.ts). A line that is none of these is an error at
 * its file:line, as is a pattern that cannot be matched in linear time.
 */
import type { ConfigLine } from './config-dir.ts'
import { ConfigError, combineConfigErrors } from './config-error.ts'
import { type PerlPattern, perlPatternAt } from './perl-pattern.ts'

export interface AddressRule {
  /** The entry as written (address, `@domain` or pattern). */
  readonly entry: string
  /** The rest of the line, when there is one. */
  readonly reason: string | undefined
  readonly at: ConfigLine
}

export interface AddressList {
  readonly size: number
  /** The first rule (in file order) that matches `user@domain`, given in lower case. */
  match(user: string, domain: string): AddressRule | undefined
}

/** qpsmtpd's test for "this entry is a regexp" (badmailfrom and badrcptto is_match). */
const PATTERN_CHARS = /[/^$*+!%?\\]/

export interface AddressListOptions {
  /** Perl's `/i`: badrcptto matches its patterns case-insensitively, badmailfrom does not. */
  readonly caseInsensitivePatterns?: boolean
}

export function parseAddressList(lines: readonly ConfigLine[], opts: AddressListOptions = {}): AddressList {
  const rules: AddressRule[] = []
  const exact = new Map<string, number>()
  const domains = new Map<string, number>()
  const patterns: { readonly index: number; readonly pattern: PerlPattern }[] = []
  const problems: ConfigError[] = []
  for (const at of lines) {
    const [entry = '', ...rest] = at.text.trim().split(/\s+/)
    if (entry === '') continue
    const index = rules.length
    const reason = rest.length > 0 ? rest.join(' ') : undefined
    if (PATTERN_CHARS.test(entry)) {
      try {
        patterns.push({
          index,
          pattern: perlPatternAt(at, entry, { caseInsensitive: opts.caseInsensitivePatterns === true }),
        })
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e
        problems.push(e)
        continue
      }
    } else if (!entry.includes('@')) {
      problems.push(
        new ConfigError(
          'SMTPD_ERR_CONFIG_SYNTAX',
          at.file,
          at.line,
          `"${entry}" is neither an address, nor @domain, nor a pattern`,
        ),
      )
      continue
    } else {
      const key = entry.toLowerCase()
      const map = key.startsWith('@') ? domains : exact
      if (!map.has(key)) map.set(key, index)
    }
    rules.push({ entry, reason, at })
  }
  if (problems.length > 0) throw combineConfigErrors(problems)
  return {
    size: rules.length,
    match(user, domain) {
      const address = `${user}@${domain}`
      let best = Math.min(exact.get(address) ?? Infinity, domains.get(`@${domain}`) ?? Infinity)
      for (const p of patterns) {
        if (p.index >= best) break
        if (p.pattern.test(address)) best = p.index
      }
      return best === Infinity ? undefined : rules[best]
    },
  }
}
