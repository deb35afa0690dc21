/**
 * Where a milter listens, in the syntaxes operators copy from their existing configuration:
 * Sendmail's `inet:PORT@HOST`, `inet6:PORT@HOST`, `unix:/path`, `local:/path`; Postfix's
 * `inet:HOST:PORT` (`inet:[::1]:PORT` for IPv6); qpsmtpd's `PORT` and `HOST:PORT`; a bare
 * `/path`. A relative Unix path is returned as written, for the caller to resolve.
 */
import type { ConnectTarget } from '../../net/index.ts'

export function parseMilterSocket(spec: string): ConnectTarget {
  const s = spec.trim()
  const unix = /^(?:unix|local):(.+)$/i.exec(s)
  if (unix !== null) return { path: unix[1] as string }
  if (s.startsWith('/')) return { path: s }
  const inet = /^(inet6?):(.+)$/i.exec(s)
  const rest = inet === null ? s : (inet[2] as string)
  // Sendmail: PORT@HOST
  const at = /^(\d+)@(.+)$/.exec(rest)
  if (at !== null) return { host: unbracket(at[2] as string), port: port(at[1] as string, spec) }
  // Postfix and qpsmtpd: HOST:PORT, [IPv6]:PORT; qpsmtpd: a port alone is on localhost.
  if (/^\d+$/.test(rest))
    return { host: inet?.[1]?.toLowerCase() === 'inet6' ? '::1' : '127.0.0.1', port: port(rest, spec) }
  const hostPort = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(rest)
  if (hostPort !== null) return { host: unbracket(hostPort[1] as string), port: port(hostPort[2] as string, spec) }
  throw new Error(`milter socket "${spec}": expected inet:PORT@HOST, inet:HOST:PORT, unix:/path, HOST:PORT or PORT`)
}

const unbracket = (host: string): string => (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host)

function port(text: string, spec: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1 || n > 65_535)
    throw new Error(`milter socket "${spec}": port ${text} is not 1-65535`)
  return n
}
