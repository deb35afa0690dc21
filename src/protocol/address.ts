/**
 * RFC 5321 §4.1.2 paths of MAIL FROM and RCPT TO, parsed by a hand-written linear-time scanner.
 *
 * Quoted local parts come back dequoted (`"a@b"@c` is local `a@b`, domain `c`); source routes are
 * checked, then dropped (§4.1.1.3, Appendix C); domain case is kept. No relay policy here.
 * Also RFC 5321 §4.5.3.1 (64/255/256 octets), RFC 6531 §3.3 (UTF-8 with SMTPUTF8), RFC 3463 codes.
 * Security: faces the network. No backtracking regexes (ReDoS); C0, DEL and C1 controls are refused
 * so they never reach spool, logs or milters; `a%b@c`, `b!a@c` and `"a@b"@c` are never split.
 */
import { isIPv4, isIPv6 } from 'node:net'
import { domainToASCII, domainToUnicode } from 'node:url'
import { asciiLowerCase, asciiUpperCase } from './command-line.ts'
import type { Address } from './envelope.ts'
import { type ParseResult, parsed, parseError } from './parse-result.ts'

export interface PathOptions {
  /** The transaction uses SMTPUTF8 (RFC 6531): UTF-8 is allowed in local part and domain. */
  readonly smtputf8: boolean
  /** Refuse the usual deviations: a missing `<>`, a space after the colon (Postfix strict_rfc821_envelopes). */
  readonly strict: boolean
}

export interface SplitOptions {
  /** `FROM` for MAIL, `TO` for RCPT. */
  readonly keyword: 'FROM' | 'TO'
  readonly strict: boolean
}

type Role = 'sender' | 'recipient'

const MAX_LOCAL = 64
const MAX_DOMAIN = 255
const MAX_PATH = 256

const AT = 0x40
const DOT = 0x2e
const HYPHEN = 0x2d
const QUOTE = 0x22
const BACKSLASH = 0x5c

/** RFC 5321 atext: ALPHA / DIGIT and ``!#$%&'*+-/=?^_`{|}~``. */
const ATEXT_SPECIALS = new Set(Array.from("!#$%&'*+-/=?^_`{|}~", (c) => c.charCodeAt(0)))
const isAlnum = (c: number): boolean => (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a)
const isAtext = (c: number): boolean => isAlnum(c) || ATEXT_SPECIALS.has(c) || c >= 0x80

/** A character for an error message, never echoing a control character. */
const describe = (c: number): string =>
  c > 0x20 && c < 0x7f ? `"${String.fromCharCode(c)}"` : `U+${c.toString(16).toUpperCase().padStart(4, '0')}`

function syntaxError<T>(role: Role, problem: string): ParseResult<T> {
  return role === 'sender'
    ? parseError(501, '5.1.7', `Bad sender address syntax: ${problem}`)
    : parseError(501, '5.1.3', `Bad recipient address syntax: ${problem}`)
}

function tooLong<T>(role: Role, what: string, max: number): ParseResult<T> {
  const who = role === 'sender' ? 'Sender' : 'Recipient'
  return parseError(
    501,
    role === 'sender' ? '5.1.7' : '5.1.3',
    `${who} address too long: ${what} exceeds ${max} octets`,
  )
}

/** UTF-8 octets of `s`, or a problem when `s` holds a control character or a lone surrogate. */
function scanText(s: string): { octets: number; nonAscii: boolean } | string {
  let octets = 0
  let nonAscii = false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) {
      if (c < 0x20 || c === 0x7f) return `control character ${describe(c)}`
      octets++
      continue
    }
    nonAscii = true
    if (c <= 0x9f) return `control character ${describe(c)}`
    if (c < 0x800) octets += 2
    else if (c >= 0xd800 && c <= 0xdfff) {
      const d = s.charCodeAt(i + 1)
      if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) return 'invalid UTF-8'
      octets += 4
      i++
    } else octets += 3
  }
  return { octets, nonAscii }
}

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8')

/** Checks an address literal's content (between the brackets): IPv4 or `IPv6:`, no general literals. */
function literalProblem(content: string): string | undefined {
  if (asciiUpperCase(content.slice(0, 5)) === 'IPV6:') {
    const ip = content.slice(5)
    return isIPv6(ip) && !ip.includes('%') ? undefined : 'invalid IPv6 address literal'
  }
  if (content.includes(':')) return 'general address literals are not supported'
  // node:net refuses leading zeros, which inet_aton would read as octal.
  return isIPv4(content) ? undefined : 'invalid IPv4 address literal'
}

/** Checks s[start, end) as an RFC 5321 Domain (RFC 6531 U-labels allowed) or address literal. */
function domainProblem(s: string, start: number, end: number): string | undefined {
  if (start >= end) return 'missing domain'
  if (s.charCodeAt(start) === 0x5b) {
    const close = s.indexOf(']', start)
    if (close !== end - 1) return close === -1 ? 'unterminated address literal' : 'text after address literal'
    return literalProblem(s.slice(start + 1, close))
  }
  let labelStart = start
  let nonAscii = false
  let numericLabel = true
  for (let j = start; j <= end; j++) {
    const c = j === end ? DOT : s.charCodeAt(j)
    if (c === DOT) {
      if (j === labelStart) {
        if (j === start) return 'domain starts with "."'
        return j === end ? 'domain ends with "."' : 'empty label ("..") in domain'
      }
      if (s.charCodeAt(labelStart) === HYPHEN) return 'domain label starts with "-"'
      if (s.charCodeAt(j - 1) === HYPHEN) return 'domain label ends with "-"'
      if (j - labelStart > 63) return 'domain label longer than 63 octets'
      if (j < end) numericLabel = true
      labelStart = j + 1
    } else if (isAlnum(c) || c === HYPHEN) {
      if (c < 0x30 || c > 0x39) numericLabel = false
    } else if (c >= 0x80) {
      nonAscii = true
      numericLabel = false
    } else {
      return `invalid character ${describe(c)} in domain`
    }
  }
  // RFC 3696 §2: a top-level domain is never all-numeric; `a@192.0.2.1` would be read as an address.
  if (numericLabel) return 'numeric top-level domain (use an address literal such as [192.0.2.1])'
  if (!nonAscii) return undefined
  const unicode = s.slice(start, end)
  const ascii = domainToASCII(unicode)
  if (ascii === '') return 'invalid internationalized domain name'
  // RFC 6531 §3.2 wants U-labels, not text that UTS #46 would map (fullwidth letters, U+3002 as a dot,
  // soft hyphens): the labels we checked must be the labels that get routed.
  if (domainToUnicode(ascii) !== unicode.toLowerCase()) return 'internationalized domain is not in U-label form'
  const again = domainProblem(ascii, 0, ascii.length)
  return again === undefined ? undefined : `internationalized domain: ${again}`
}

/** Index just past the domain or literal that starts at `i` inside a source route (ends at `,` or `:`). */
function routeDomainEnd(s: string, i: number): number {
  if (s.charCodeAt(i) === 0x5b) {
    const close = s.indexOf(']', i)
    return close === -1 ? s.length : close + 1
  }
  let j = i
  while (j < s.length && s[j] !== ',' && s[j] !== ':') j++
  return j
}

/** Parses `Mailbox` (local "@" domain) filling all of `s` from `i`; returns the dequoted local part. */
function parseMailbox(s: string, i: number, role: Role): ParseResult<Address> {
  let local = ''
  let j = i
  if (s.charCodeAt(i) === QUOTE) {
    j = i + 1
    for (;;) {
      if (j >= s.length) return syntaxError(role, 'unterminated quoted string')
      const c = s.charCodeAt(j)
      if (c === QUOTE) break
      if (c === BACKSLASH) {
        const d = s.charCodeAt(j + 1)
        if (j + 1 >= s.length) return syntaxError(role, 'unterminated quoted string')
        // RFC 5321 quoted-pairSMTP: a backslash escapes one printable ASCII character.
        if (d < 0x20 || d > 0x7e) return syntaxError(role, 'invalid escape in quoted string')
        local += s[j + 1]
        j += 2
        continue
      }
      local += s[j]
      j++
    }
    j++
    if (local === '') return syntaxError(role, 'empty quoted local part')
    if (j >= s.length) return syntaxError(role, 'missing "@domain"')
    if (s.charCodeAt(j) !== AT) return syntaxError(role, `unexpected ${describe(s.charCodeAt(j))} after quoted string`)
  } else {
    let prevDot = true
    for (; j < s.length; j++) {
      const c = s.charCodeAt(j)
      if (c === AT) break
      if (c === DOT) {
        if (prevDot) return syntaxError(role, j === i ? 'local part starts with "."' : 'consecutive dots in local part')
        prevDot = true
      } else if (isAtext(c)) {
        prevDot = false
      } else if (c === 0x28) {
        return syntaxError(role, 'comments are not allowed in an address')
      } else {
        return syntaxError(role, `invalid character ${describe(c)} in local part`)
      }
    }
    if (j === i) return syntaxError(role, 'empty local part')
    if (prevDot) return syntaxError(role, 'local part ends with "."')
    if (j >= s.length) return syntaxError(role, 'missing "@domain"')
    local = s.slice(i, j)
  }
  if (utf8Length(s.slice(i, j)) > MAX_LOCAL) return tooLong(role, 'local part', MAX_LOCAL)
  const problem = domainProblem(s, j + 1, s.length)
  if (problem !== undefined) return syntaxError(role, problem)
  const domain = s.slice(j + 1)
  if (utf8Length(domain) > MAX_DOMAIN) return tooLong(role, 'domain', MAX_DOMAIN)
  return parsed({ local, domain, utf8: /[^\x00-\x7f]/.test(local) || /[^\x00-\x7f]/.test(domain) })
}

function parsePath(text: string, role: Role, opts: PathOptions): ParseResult<Address | null> {
  // Cap before scanning (§1.15 of our security notes): each UTF-16 unit is at least one UTF-8 octet.
  if (text.length > MAX_PATH) return tooLong(role, 'path', MAX_PATH)
  const scan = scanText(text)
  if (typeof scan === 'string') return syntaxError(role, scan)
  const bracketed = text.charCodeAt(0) === 0x3c
  let inner = text
  if (bracketed) {
    if (text.length < 2 || text.charCodeAt(text.length - 1) !== 0x3e) return syntaxError(role, 'missing closing ">"')
    inner = text.slice(1, -1)
  } else if (text === '') {
    return syntaxError(role, 'missing address')
  } else if (opts.strict) {
    return syntaxError(role, 'address must be enclosed in "<" and ">"')
  }
  if (scan.octets + (bracketed ? 0 : 2) > MAX_PATH) return tooLong(role, 'path', MAX_PATH)
  if (scan.nonAscii && !opts.smtputf8) {
    return parseError(553, '5.6.7', `Non-ASCII ${role} address requires the SMTPUTF8 parameter`)
  }
  if (inner === '') {
    if (role === 'sender') return parsed(null)
    return syntaxError(role, 'the null path <> is not a valid recipient')
  }
  // RFC 5321 §4.1.1.3: "<Postmaster>" without a domain must be accepted as a recipient.
  if (role === 'recipient' && asciiLowerCase(inner) === 'postmaster') {
    return parsed({ local: inner, domain: undefined, utf8: false })
  }
  let i = 0
  if (inner.charCodeAt(0) === AT) {
    // A-d-l ":" (source route): validate each hop, then ignore it (RFC 5321 Appendix C).
    for (;;) {
      const end = routeDomainEnd(inner, i + 1)
      const problem = domainProblem(inner, i + 1, end)
      if (problem !== undefined) return syntaxError(role, `source route: ${problem}`)
      if (end >= inner.length) return syntaxError(role, 'source route without a mailbox')
      i = end + 1
      if (inner[end] === ':') break
      if (inner[end] !== ',' || inner.charCodeAt(i) !== AT) return syntaxError(role, 'malformed source route')
    }
  }
  return parseMailbox(inner, i, role)
}

/**
 * Parses a MAIL FROM path (`<a@b>`, `<>`, or `a@b` unless strict). `null` is the null reverse path.
 *
 * @example
 * parseReversePath('<"a b"@Example.org>', { smtputf8: false, strict: true })
 * // { ok: true, value: { local: 'a b', domain: 'Example.org', utf8: false } }
 */
export function parseReversePath(text: string, opts: PathOptions): ParseResult<Address | null> {
  return parsePath(text, 'sender', opts)
}

/**
 * Parses a RCPT TO path. `<Postmaster>` (any case) gives `domain: undefined`; `<>` is refused.
 *
 * @example
 * parseForwardPath('<@relay.test:a%b@c.test>', { smtputf8: false, strict: true })
 * // { ok: true, value: { local: 'a%b', domain: 'c.test', utf8: false } }
 */
export function parseForwardPath(text: string, opts: PathOptions): ParseResult<Address> {
  const r = parsePath(text, 'recipient', opts)
  if (!r.ok) return r
  return r.value === null ? syntaxError('recipient', 'the null path <> is not a valid recipient') : parsed(r.value)
}

/**
 * Splits the arguments of MAIL or RCPT (`FROM:<a@b> SIZE=10`) into the path and the parameter string.
 * Tracks quoted strings, so `<"a> b"@c>` stays one path. Unless strict, accepts `FROM: <a@b>` (like
 * Postfix strict_rfc821_envelopes=no). A bare `FROM:a@b` is split in both modes: the path parser
 * refuses it when strict, after the mail_pre/rcpt_pre hooks had their chance to add the brackets.
 *
 * @example
 * splitPathAndParams('FROM:<a@b> SIZE=10', { keyword: 'FROM', strict: true })
 * // { ok: true, value: { path: '<a@b>', params: 'SIZE=10' } }
 */
export function splitPathAndParams(rest: string, opts: SplitOptions): ParseResult<{ path: string; params: string }> {
  const role: Role = opts.keyword === 'FROM' ? 'sender' : 'recipient'
  let i = 0
  if (!opts.strict) while (rest.charCodeAt(i) === 0x20) i++
  const kw = `${opts.keyword}:`
  if (asciiUpperCase(rest.slice(i, i + kw.length)) !== kw) {
    return parseError(
      501,
      '5.5.4',
      opts.keyword === 'FROM' ? 'Syntax: MAIL FROM:<address>' : 'Syntax: RCPT TO:<address>',
    )
  }
  i += kw.length
  if (rest.charCodeAt(i) === 0x20) {
    if (opts.strict) return syntaxError(role, 'no space allowed after the colon')
    while (rest.charCodeAt(i) === 0x20) i++
  }
  const start = i
  const bracketed = rest.charCodeAt(i) === 0x3c
  const stop = bracketed ? 0x3e : 0x20
  let inQuote = false
  let j = bracketed ? i + 1 : i
  for (; j < rest.length; j++) {
    const c = rest.charCodeAt(j)
    if (inQuote) {
      if (c === BACKSLASH) j++
      else if (c === QUOTE) inQuote = false
    } else if (c === QUOTE) inQuote = true
    else if (c === stop) break
  }
  if (inQuote) return syntaxError(role, 'unterminated quoted string')
  if (bracketed && j >= rest.length) return syntaxError(role, 'missing closing ">"')
  const end = bracketed ? j + 1 : j
  const path = rest.slice(start, end)
  if (end < rest.length && rest.charCodeAt(end) !== 0x20) {
    return syntaxError(role, `unexpected ${describe(rest.charCodeAt(end))} after the address`)
  }
  let p = end
  while (rest.charCodeAt(p) === 0x20) p++
  return parsed({ path, params: rest.slice(p) })
}

/**
 * A domain in the form to compare and route by: ASCII lower case, IDNs as Punycode A-labels.
 * Address literals keep their `IPv6:` tag. The domain must already have passed the path parser.
 *
 * @example
 * normalizeDomain('Bücher.Example') // 'xn--bcher-kva.example'
 */
export function normalizeDomain(d: string): string {
  if (d.startsWith('[')) {
    return asciiUpperCase(d.slice(1, 6)) === 'IPV6:' ? `[IPv6:${asciiLowerCase(d.slice(6))}` : d
  }
  return /^[\x00-\x7f]*$/.test(d) ? asciiLowerCase(d) : domainToASCII(d)
}
