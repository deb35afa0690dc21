/**
 * RFC 3461 §4 xtext, the encoding of ENVID=, ORCPT= and (RFC 4954 §5) AUTH= values.
 *
 * Strict: `+` takes exactly two UPPERCASE hex digits, and raw characters are 33..126 except `+` and `=`.
 * Decoded octets are read as UTF-8.
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

/**
 * Decodes xtext. Fails (501 5.5.4) on bad syntax, on invalid UTF-8 and on any control character.
 *
 * @example
 * decodeXtext('a+2Bb') // { ok: true, value: 'a+b' }
 * decodeXtext('x+0D+0AX') // { ok: false, code: 501, ... }
 */
export function decodeXtext(s: string): ParseResult<string> {
  const bytes = new Uint8Array(s.length)
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
    const c = text.charCodeAt(i)
    if (c >= 0x80 && c <= 0x9f) return invalid('encoded control character')
  }
  return parsed(text)
}

/** Encodes a string as xtext (its UTF-8 octets; `+`, `=`, space and non-printables as `+HH`). */
export function encodeXtext(s: string): string {
  let out = ''
  for (const b of new TextEncoder().encode(s)) {
    out += isXchar(b) ? String.fromCharCode(b) : `+${b.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}
