/**
 * SMTP replies and enhanced status codes: the one place where a reply becomes bytes.
 *
 * Every reply carries an RFC 3463 / RFC 5248 enhanced code except the greeting and the
 * EHLO response (RFC 2034 §3). Text lines are sanitised here, so no plugin text can put
 * a CR or LF on the wire (reply splitting), and cut to the 512 octets of RFC 5321 §4.5.3.1.5.
 */

export type ReplyClass = 2 | 3 | 4 | 5
export type EnhancedCode = `${2 | 4 | 5}.${number}.${number}`

export interface Reply {
  readonly code: number
  readonly enhanced?: EnhancedCode | undefined
  readonly lines: readonly string[]
}

export function reply(code: number, enhanced: EnhancedCode | undefined, text: string | readonly string[]): Reply {
  const lines = typeof text === 'string' ? text.split('\n') : text.flatMap((t) => t.split('\n'))
  return { code, enhanced, lines: lines.length === 0 ? [''] : lines }
}

export const replyClass = (code: number): ReplyClass => Math.floor(code / 100) as ReplyClass

const unsafe = /[\x00-\x08\x0a-\x1f\x7f]/g

/** A reply line's octets, code and CRLF included (RFC 5321 §4.5.3.1.5). */
const MAX_LINE = 512

/** `text` cut to at most `max` UTF-8 octets, at a character boundary. */
function fitOctets(text: string, max: number): string {
  // Each UTF-16 unit is at most 3 octets: most lines are decided without counting.
  if (text.length * 3 <= max || Buffer.byteLength(text) <= max) return text
  let octets = 0
  let end = 0
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number
    octets += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4
    if (octets > max) break
    end += ch.length
  }
  return text.slice(0, end)
}

/** Renders a reply as wire bytes: `code-text` continuation lines, then `code text`. */
export function renderReply(r: Reply): string {
  const prefix = r.enhanced === undefined ? '' : `${r.enhanced} `
  const room = MAX_LINE - 4 - prefix.length - 2
  let out = ''
  const last = r.lines.length - 1
  for (let i = 0; i <= last; i++) {
    const text = fitOctets((r.lines[i] ?? '').replace(unsafe, ' '), room)
    out += `${r.code}${i === last ? ' ' : '-'}${prefix}${text}\r\n`
  }
  return out
}

/** The class digit of an enhanced code must match the reply code's class (RFC 3463 §2). */
export function enhancedFits(code: number, enhanced: EnhancedCode): boolean {
  return enhanced.startsWith(`${replyClass(code)}.`)
}
