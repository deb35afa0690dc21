/**
 * Splits one decoded command line into verb and arguments, and spots other protocols' requests.
 *
 * No validation of the arguments: each verb parses its own. The line arrives without CRLF.
 * RFC 5321 §4.1.1 (verbs are case-insensitive, one SP before the arguments).
 * Security: an HTTP or POP3/FTP request at an SMTP port is a cross-protocol attack (browser-origin
 * SMTP, ALPACA); the session answers it with 421 and closes, as smtp-server does.
 */

/** Upper-cases ASCII letters only, so `ß` or the Turkish dotless i never change length or meaning. */
export const asciiUpperCase = (s: string): string => s.replace(/[a-z]+/g, (m) => m.toUpperCase())

/** Lower-cases ASCII letters only. */
export const asciiLowerCase = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase())

/** The line without trailing SP and HTAB (clients pad, and RFC 5321 §4.1.1 tolerates it in practice). */
function trimEnd(line: string): string {
  let end = line.length
  while (end > 0) {
    const c = line.charCodeAt(end - 1)
    if (c !== 0x20 && c !== 0x09) break
    end--
  }
  return line.slice(0, end)
}

/**
 * Splits a command line at its first space.
 *
 * @example
 * splitCommand('mail FROM:<a@b>  SIZE=1  ') // { verb: 'MAIL', args: 'FROM:<a@b>  SIZE=1' }
 */
export function splitCommand(line: string): { verb: string; args: string } {
  const trimmed = trimEnd(line)
  const sp = trimmed.indexOf(' ')
  if (sp === -1) return { verb: asciiUpperCase(trimmed), args: '' }
  return { verb: asciiUpperCase(trimmed.slice(0, sp)), args: trimmed.slice(sp + 1) }
}

// HTTP methods (RFC 9110 §9, RFC 5789) and the POP3/FTP login verb; none of them is an SMTP verb.
const FOREIGN_VERBS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'USER'])

/** True for ` HTTP/1.1`, ` HTTP/2`, ` HTTP/1.0` as the last word of a line with at least two words. */
function endsWithHttpVersion(line: string): boolean {
  const sp = line.lastIndexOf(' ')
  if (sp <= 0) return false
  const tail = asciiUpperCase(line.slice(sp + 1))
  if (!tail.startsWith('HTTP/')) return false
  const v = tail.slice(5)
  const digit = (i: number) => v.charCodeAt(i) >= 0x30 && v.charCodeAt(i) <= 0x39
  return (v.length === 1 && digit(0)) || (v.length === 3 && digit(0) && v[1] === '.' && digit(2))
}

/**
 * True when the line is another protocol's request: `GET /`, `POST / HTTP/1.1`, `CONNECT host:443`,
 * `USER x`, or anything ending in an HTTP version. The session replies 421 and closes.
 *
 * @example
 * isHttpLike('POST / HTTP/1.1') // true
 * isHttpLike('HELO GET') // false
 */
export const isHttpLike = (line: string): boolean => {
  const trimmed = trimEnd(line)
  const sp = line.indexOf(' ')
  if (sp > 0 && FOREIGN_VERBS.has(asciiUpperCase(line.slice(0, sp)))) return true
  return endsWithHttpVersion(trimmed)
}
