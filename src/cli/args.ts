/**
 * Command-line arguments: `qtsmtpd --config DIR --listen HOST:PORT[/role] ...`.
 * Parsing only; main.ts acts on them.
 */
import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import type { ListenerRole } from '../host/context.ts'
import { type ListenerSpec, roleForPort } from '../server/listeners.ts'
import type { ServeOptions } from '../server/serve.ts'
import { checkAdminAddress, parseHostPort } from './admin-args.ts'

/** The command line: how to serve (ServeOptions) and what to do. */
export interface CliOptions extends ServeOptions {
  /** Listeners from --listen; undefined when none was given (systemd sockets or the default). */
  readonly listeners: readonly ListenerSpec[] | undefined
  readonly check: boolean
  readonly version: boolean
  readonly help: boolean
  /** One session on stdin/stdout (tcpserver, inetd, systemd Accept=yes). */
  readonly stdio: boolean
  /** --role: the stdio session's listener role; undefined: from the local port. */
  readonly stdioRole: ListenerRole | undefined
  /** Admin command: signal the running server named by --pid-file, then exit. */
  readonly control: 'reload' | 'stop' | undefined
}

export const defaultListen = '127.0.0.1:2525'

const missingConfig =
  '--config DIR is required: the qpsmtpd-layout configuration directory to serve (e.g. /etc/qpsmtpd); ' +
  '`npm start` runs the example configuration in config.sample/'

export const usage = `Usage: qtsmtpd --config DIR [--listen HOST:PORT[/smtp|submission|smtps]]... [options]
       qtsmtpd --stdio [--role smtp|submission|smtps] --config DIR
                                           (one session on stdin/stdout: tcpserver, inetd)
       qtsmtpd status|reload|drain --pid-file FILE | --admin HOST:PORT   (the running server)
       qtsmtpd config --config DIR [-n | -d]   (the effective configuration, as postconf)
       qtsmtpd dkim-keygen --config DIR [--ed25519] DOMAIN SELECTOR   (a DKIM key and its DNS record)
       qtsmtpd karma --config DIR list|search|capture|release ...     (qpsmtpd's karma_tool)
       qtsmtpd import-greylist|import-karma --config DIR SOURCE       (qpsmtpd's databases)

  --config DIR            qpsmtpd-layout configuration directory (plugins, me, rcpthosts, ...);
                          required: there is no default
  --listen ADDR           listener, repeatable; e.g. 127.0.0.1:2525, [::1]:25, 0.0.0.0:465/smtps,
                          :587/submission (default ${defaultListen}, or the systemd sockets)
  --qmail-control DIR     fallback directory for config files (qmail's /var/qmail/control)
  --workers N|auto        N worker processes sharing the listeners (auto: one per CPU);
                          default: serve in this one process
  --user USER             after binding, become USER (start as root to bind ports < 1024)
  --group GROUP           and GROUP (default: USER's primary group)
  --max-connections N     open connections at once, per process (default 1000)
  --max-connections-per-ip N  per client address, per process (default 50)
  --drain SECONDS         on SIGTERM, let sessions finish this long before 421 (default 30)
  --pid-file FILE         write the (primary) process id here; removed at exit
  --stdio                 speak SMTP on stdin/stdout for one connection (UCSPI environment)
  --role ROLE             with --stdio: smtp, submission or smtps (implicit TLS on stdin/stdout);
                          default: submission when the local port is 587, else smtp
  --admin HOST:PORT       the admin listener: /metrics, /healthz, the status page (/); loopback
                          unless --admin-token-file is given
  --admin-token-file FILE a bearer token the admin listener requires (all but /healthz)
  --agent-check HOST:PORT answer HAProxy's agent-check here (a weight, drain, maint)
  --reload                with --pid-file: make the running server reload (as qtsmtpd reload)
  --stop                  with --pid-file: make the running server drain and stop (as qtsmtpd drain)
  --check                 load and validate the configuration, then exit
  --version               print the version

Exit codes: 0 stopped, 1 bad arguments, 2 bad configuration, 3 cannot listen,
            4 cannot change user or group. Signals: HUP reload, TERM drain (twice: now).
`

const roles = new Set<ListenerRole>(['smtp', 'submission', 'smtps'])

export function parseListen(text: string): ListenerSpec {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:/[\]]*)):(\d{1,5})(?:\/([a-z]+))?$/.exec(text)
  if (!m) throw new Error(`--listen ${text}: expected HOST:PORT[/role], e.g. 127.0.0.1:2525 or [::1]:25/smtp`)
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : (m[2] as string))
  const port = Number(m[3])
  if (port > 65535) throw new Error(`--listen ${text}: port out of range`)
  const role = (m[4] ?? roleForPort(port)) as ListenerRole
  if (!roles.has(role)) throw new Error(`--listen ${text}: role must be smtp, submission or smtps`)
  return { host, port, role }
}

export function parseWorkers(text: string | undefined): number {
  if (text === undefined) return 0
  if (text === 'auto') return availableParallelism()
  if (!/^\d{1,3}$/.test(text) || Number(text) < 1 || Number(text) > 256)
    throw new Error(`--workers: expected a number from 1 to 256 or "auto", got "${text}"`)
  return Number(text)
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
      workers: { type: 'string', short: 'w' },
      user: { type: 'string', short: 'u' },
      group: { type: 'string', short: 'g' },
      stdio: { type: 'boolean' },
      role: { type: 'string' },
      reload: { type: 'boolean' },
      stop: { type: 'boolean' },
      check: { type: 'boolean' },
      admin: { type: 'string' },
      'admin-token-file': { type: 'string' },
      'agent-check': { type: 'string' },
      version: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  })
  const count = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined
    if (!/^\d{1,9}$/.test(v)) throw new Error(`--${name}: expected a number, got "${v}"`)
    return Number(v)
  }
  const stdio = values.stdio ?? false
  if (stdio && (values.workers !== undefined || values.listen !== undefined))
    throw new Error('--stdio serves one connection on stdin/stdout: no --listen or --workers')
  if (values.group !== undefined && values.user === undefined) throw new Error('--group needs --user')
  const control = values.reload ? 'reload' : values.stop ? 'stop' : undefined
  if (control !== undefined && values['pid-file'] === undefined)
    throw new Error(`--${control} needs --pid-file of the running server`)
  const admin = values.admin === undefined ? undefined : parseHostPort('--admin', values.admin)
  if (admin !== undefined) checkAdminAddress(admin, values['admin-token-file'])
  else if (values['admin-token-file'] !== undefined) throw new Error('--admin-token-file needs --admin')
  if (stdio && (admin !== undefined || values['agent-check'] !== undefined))
    throw new Error('--stdio serves one connection: no --admin or --agent-check')
  if (values.role !== undefined && !stdio)
    throw new Error('--role is for --stdio; a listener takes its role in --listen HOST:PORT/ROLE')
  if (values.role !== undefined && !roles.has(values.role as ListenerRole))
    throw new Error(`--role ${values.role}: expected smtp, submission or smtps`)
  // No default directory: a forgotten --config must not serve whatever ./config holds.
  const needsConfig = !(values.help || values.version || control !== undefined)
  if (needsConfig && values.config === undefined) throw new Error(missingConfig)
  return {
    // Only --help, --version, --reload and --stop run without one, and they do not read it.
    configDir: values.config ?? '',
    listeners: values.listen?.map(parseListen),
    qmailControl: values['qmail-control'],
    check: values.check ?? false,
    version: values.version ?? false,
    help: values.help ?? false,
    pidFile: values['pid-file'],
    drainSeconds: count('drain', values.drain) ?? 30,
    maxConnections: count('max-connections', values['max-connections']),
    maxConnectionsPerIp: count('max-connections-per-ip', values['max-connections-per-ip']),
    workers: parseWorkers(values.workers),
    user: values.user,
    group: values.group,
    stdio,
    stdioRole: values.role as ListenerRole | undefined,
    control,
    admin,
    adminTokenFile: values['admin-token-file'],
    agentCheck: values['agent-check'] === undefined ? undefined : parseHostPort('--agent-check', values['agent-check']),
  }
}
