/**
 * RFC 3461 §4 xtext, the encoding of ENVID=, ORCPT= and (RFC 4954 §5) AUTH= values, and RFC 6533 §3
 * utf-8-addr-xtext / utf-8-addr-unitext, the encodings of `ORCPT=utf-8;...`.
 *
 * Strict: `+` takes exactly two UPPERCASE hex digits, and raw characters are 33..126 except `+` and `=`
 * (raw UTF-8 too where RFC 6531 §3.3 allows it). Decoded octets are read as UTF-8.
 * Security: decoding that yields CR, LF, NUL or any other control character (C0, DEL, C1) is an
 * error, never a value: Exim CVE-2020-28021 wrote a decoded AUTH= newline into its spool file.
 */
import { type ParseResult, parsed, parseError } from './parse-result.ts'

const PLUS = 0x2b
const EQUALS = 0x3d

const isXchar = (c: number): boolean => c >= 33 && c <= 126 && c !== PLUS && c !== EQUALS

/** The value of an uppercase hex digit, or -1. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10
  return -1
}

const invalid = (problem: string): ParseResult<string> => parseError(501, '5.5.4', `Invalid xtext: ${problem}`)

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const utf8Encoder = new TextEncoder()

/**
 * True when `s` is well-formed xtext. Syntax only: {@link decodeXtext} also refuses control characters
 * and invalid UTF-8.
 */
export function isXtext(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === PLUS) {
      if (hexValue(s.charCodeAt(i + 1)) < 0 || hexValue(s.charCodeAt(i + 2)) < 0) return false
      i += 2
    } else if (!isXchar(c)) return false
  }
  return true
}

const isControl = (c: number): boolean => c < 0x20 || (c >= 0x7f && c <= 0x9f)

/** Raw characters past ASCII: allowed by RFC 6531 §3.3 in an SMTPUTF8 transaction. */
export interface Utf8Option {
  readonly utf8?: boolean
}

/**
 * Decodes xtext. Fails (501 5.5.4) on bad syntax, on invalid UTF-8 and on any control character.
 * With `utf8`, raw non-ASCII characters stand for themselves (Postfix sends the UTF-8 octets of a
 * recipient as `+HH`, but RFC 6531 §3.3 lets an SMTPUTF8 client send them raw).
 *
 * @example
 * decodeXtext('a+2Bb') // { ok: true, value: 'a+b' }
 * decodeXtext('+C3+BCser@x') // { ok: true, value: 'üser@x' }
 * decodeXtext('x+0D+0AX') // { ok: false, code: 501, ... }
 */
export function decodeXtext(s: string, opts: Utf8Option = {}): ParseResult<string> {
  // A raw UTF-16 unit is at most 3 UTF-8 octets (a surrogate pair: 4 for 2 units).
  const bytes = new Uint8Array(opts.utf8 ? s.length * 3 : s.length)
  let n = 0
  let ascii = true
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === PLUS) {
      const hi = hexValue(s.charCodeAt(i + 1))
      const lo = hexValue(s.charCodeAt(i + 2))
      if (hi < 0 || lo < 0) return invalid('"+" must be followed by two uppercase hex digits')
      const b = hi * 16 + lo
      if (b < 0x20 || b === 0x7f) return invalid(`encoded control character +${s.slice(i + 1, i + 3)}`)
      if (b >= 0x80) ascii = false
      bytes[n++] = b
      i += 2
    } else if (isXchar(c)) {
      bytes[n++] = c
    } else if (opts.utf8 && c >= 0x80) {
      const cp = s.codePointAt(i) as number
      const ch = String.fromCodePoint(cp)
      n += utf8Encoder.encodeInto(ch, bytes.subarray(n)).written
      i += ch.length - 1
      ascii = false
    } else {
      return invalid(c === EQUALS ? '"=" must be encoded as +3D' : 'character outside 33..126')
    }
  }
  let text: string
  try {
    text = utf8.decode(bytes.subarray(0, n))
  } catch {
    return invalid('encoded octets are not UTF-8')
  }
  for (let i = 0; !ascii && i < text.length; i++) {
    if (isControl(text.charCodeAt(i))) return invalid('encoded control character')
  }
  return parsed(text)
}

const BACKSLASH = 0x5c

/**
 * Decodes an RFC 6533 §3 utf-8-addr-xtext: `\x{HEX}` stands for the code point HEX (1 to 6 hex digits,
 * either case, as Postfix's uxtext_unquote reads it); with `utf8`, also utf-8-addr-unitext (raw
 * UTF-8, allowed when SMTPUTF8 is in use). Other characters stand for themselves, as in Postfix.
 * Fails (501 5.5.4) on a malformed `\x{`, a surrogate, a code point past U+10FFFF or a control.
 *
 * @example
 * decodeUtf8AddrXtext('\\x{FC}ser@x') // { ok: true, value: 'üser@x' }
 * decodeUtf8AddrXtext('üser@x', { utf8: true }) // { ok: true, value: 'üser@x' }
 */
export function decodeUtf8AddrXtext(s: string, opts: Utf8Option = {}): ParseResult<string> {
  let out = ''
  let from = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) {
      if (!opts.utf8 || isControl(c)) return invalid('character outside 33..126')
      continue
    }
    if (c <= 0x20 || c === 0x7f) return invalid('character outside 33..126')
    if (c !== BACKSLASH || s.charCodeAt(i + 1) !== 0x78 || s.charCodeAt(i + 2) !== 0x7b) continue
    const close = s.indexOf('}', i + 3)
    const hex = close === -1 ? '' : s.slice(i + 3, close)
    if (!/^[0-9A-Fa-f]{1,6}$/.test(hex)) return invalid('"\\x{" must hold 1 to 6 hex digits and a "}"')
    const cp = Number.parseInt(hex, 16)
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return invalid(`\\x{${hex}} is not a Unicode scalar value`)
    if (isControl(cp)) return invalid(`encoded control character \\x{${hex}}`)
    out += s.slice(from, i) + String.fromCodePoint(cp)
    from = close + 1
    i = close
  }
  return parsed(out + s.slice(from))
}

/** Encodes a string as xtext (its UTF-8 octets; `+`, `=`, space and non-printables as `+HH`). */
export function encodeXtext(s: string): string {
  let out = ''
  for (const b of utf8Encoder.encode(s)) {
    out += isXchar(b) ? String.fromCharCode(b) : `+${b.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}
