/**
 * Command-line arguments: `qtsmtpd --config DIR --listen HOST:PORT[/role] ...`.
 * Parsing only; main.ts acts on them.
 */
import { parseArgs } from 'node:util'
import type { ListenerRole } from '../host/context.ts'
import type { ListenerSpec } from '../server/smtp-server.ts'

export interface CliOptions {
  readonly configDir: string
  readonly listeners: readonly ListenerSpec[]
  readonly qmailControl: string | undefined
  readonly check: boolean
  readonly version: boolean
  readonly help: boolean
  readonly pidFile: string | undefined
  readonly drainSeconds: number
  readonly maxConnections: number | undefined
  readonly maxConnectionsPerIp: number | undefined
}

export const usage = `Usage: qtsmtpd --config DIR [--listen HOST:PORT[/smtp|submission|smtps]]...

  --config DIR            qpsmtpd-layout configuration directory (plugins, me, rcpthosts, ...)
  --listen ADDR           listener, repeatable; e.g. 127.0.0.1:2525, [::1]:25, 0.0.0.0:465/smtps,
                          :587/submission (default 127.0.0.1:2525)
  --qmail-control DIR     fallback directory for config files (qmail's /var/qmail/control)
  --max-connections N     open connections at once (default 1000)
  --max-connections-per-ip N  per client address (default 50)
  --drain SECONDS         on SIGTERM, let sessions finish this long before 421 (default 30)
  --pid-file FILE         write the process id here
  --check                 load and validate the configuration, then exit
  --version               print the version
`

const roles = new Set<ListenerRole>(['smtp', 'submission', 'smtps'])

export function parseListen(text: string): ListenerSpec {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:/[\]]*)):(\d{1,5})(?:\/([a-z]+))?$/.exec(text)
  if (!m) throw new Error(`--listen ${text}: expected HOST:PORT[/role], e.g. 127.0.0.1:2525 or [::1]:25/smtp`)
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : (m[2] as string))
  const port = Number(m[3])
  if (port > 65535) throw new Error(`--listen ${text}: port out of range`)
  const role = (m[4] ?? (port === 465 ? 'smtps' : port === 587 ? 'submission' : 'smtp')) as ListenerRole
  if (!roles.has(role)) throw new Error(`--listen ${text}: role must be smtp, submission or smtps`)
  return { host, port, role }
}

export function parseCli(argv: readonly string[]): CliOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      config: { type: 'string', short: 'c' },
      listen: { type: 'string', short: 'l', multiple: true },
      'qmail-control': { type: 'string' },
      'max-connections': { type: 'string' },
      'max-connections-per-ip': { type: 'string' },
      drain: { type: 'string' },
      'pid-file': { type: 'string' },
      check: { type: 'boolean' },
      version: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  })
  const count = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined
    if (!/^\d+$/.test(v)) throw new Error(`--${name}: expected a number, got "${v}"`)
    return Number(v)
  }
  return {
    configDir: values.config ?? 'config',
    listeners: (values.listen ?? ['127.0.0.1:2525']).map(parseListen),
    qmailControl: values['qmail-control'],
    check: values.check ?? false,
    version: values.version ?? false,
    help: values.help ?? false,
    pidFile: values['pid-file'],
    drainSeconds: count('drain', values.drain) ?? 30,
    maxConnections: count('max-connections', values['max-connections']),
    maxConnectionsPerIp: count('max-connections-per-ip', values['max-connections-per-ip']),
  }
}
