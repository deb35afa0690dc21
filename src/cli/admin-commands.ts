/**
 * The admin commands: `qtsmtpd status`, `reload`, `drain` talk to the running server through
 * its admin listener (`--admin`, or the `FILE.admin` the server writes beside its pid file), or,
 * for reload and drain, by signal to the process in the pid file (SIGHUP, SIGTERM; the old
 * `--reload`/`--stop` flags are these). `qtsmtpd config` prints a configuration directory's
 * effective settings (server/effective-config.ts). Parsing and printing only.
 */
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { parseArgs } from 'node:util'
import type { HostPort } from '../admin/settings.ts'
import type { StatusView } from '../admin/status-view.ts'
import { readAdminToken } from '../admin/token.ts'
import { readAdminPointer } from '../server/admin-listeners.ts'
import { effectiveConfig, renderConfig } from '../server/effective-config.ts'
import { ExitCode } from '../server/exit-codes.ts'
import { awaitReloadOutcome, readReloadStatus, reloadStatusFile } from '../server/reload-status.ts'
import { parseHostPort } from './admin-args.ts'
import { statusText } from './status-text.ts'

export const adminCommands = ['status', 'reload', 'drain', 'config'] as const
export type AdminCommand = (typeof adminCommands)[number]
export const isAdminCommand = (word: string | undefined): word is AdminCommand =>
  (adminCommands as readonly (string | undefined)[]).includes(word)

export const adminUsage = `Usage: qtsmtpd status [--pid-file FILE | --admin HOST:PORT [--admin-token-file FILE]] [--newest] [--page N] [--json]
       qtsmtpd reload [--pid-file FILE | --admin HOST:PORT [--admin-token-file FILE]]
       qtsmtpd drain  [--pid-file FILE | --admin HOST:PORT [--admin-token-file FILE]]
       qtsmtpd config --config DIR [-n | -d] [--qmail-control DIR]

  status   sessions, workers, uptime, configuration generation (needs the admin listener;
           with --pid-file, the one the server wrote beside it in FILE.admin)
  reload   reload the configuration; prints the outcome, exit 2 when it was refused
  drain    stop accepting, let open sessions finish (--drain), then exit
  config   the effective configuration, key = value (-n: only what is set; -d: the defaults)
`

/** Thrown for bad arguments: printed with the usage, exit 1. */
export class AdminUsageError extends Error {}

/** A failure to report, with its exit code. */
export class AdminCommandError extends Error {
  readonly code: ExitCode
  constructor(code: ExitCode, message: string) {
    super(message)
    this.code = code
  }
}

interface Target {
  readonly admin: HostPort | undefined
  readonly token: string | undefined
  readonly pidFile: string | undefined
}

/** Runs the command; resolves with what to print on stdout. */
export async function runAdminCommand(command: AdminCommand, argv: readonly string[]): Promise<string> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'pid-file': { type: 'string' },
      admin: { type: 'string' },
      'admin-token-file': { type: 'string' },
      config: { type: 'string', short: 'c' },
      'qmail-control': { type: 'string' },
      json: { type: 'boolean' },
      newest: { type: 'boolean' },
      page: { type: 'string' },
      n: { type: 'boolean', short: 'n' },
      d: { type: 'boolean', short: 'd' },
    },
    strict: true,
  })
  const text = (k: 'pid-file' | 'admin' | 'admin-token-file' | 'config' | 'qmail-control' | 'page') => values[k]
  if (command === 'config') {
    const dir = text('config')
    if (dir === undefined) throw new AdminUsageError('config needs --config DIR')
    if (values.n && values.d) throw new AdminUsageError('config takes -n or -d, not both')
    const qmail = text('qmail-control')
    const config = await effectiveConfig(dir, qmail === undefined ? [] : [qmail])
    return renderConfig(config, values.n ? 'set' : values.d ? 'defaults' : 'all')
  }
  const target = resolveTarget(text('pid-file'), text('admin'), text('admin-token-file'))
  switch (command) {
    case 'status': {
      if (target.admin === undefined)
        throw new AdminCommandError(
          ExitCode.usage,
          `status needs the admin listener: give --admin HOST:PORT, or --pid-file of a server started with --admin` +
            (target.pidFile === undefined ? '' : ` (${target.pidFile}.admin is missing)`),
        )
      const page = Number(text('page') ?? '1')
      if (!Number.isInteger(page) || page < 1) throw new AdminUsageError(`--page: expected a number from 1`)
      const order = values.newest ? 'newest' : 'oldest'
      const first = await http(target, 'GET', `/api/status?order=${order}&offset=0&limit=1`)
      const size = (JSON.parse(first.body) as StatusView).pageSize
      const answer = await http(target, 'GET', `/api/status?order=${order}&offset=${(page - 1) * size}`)
      if (answer.status !== 200) throw fromHttp('status', answer)
      return values.json ? `${answer.body}\n` : statusText(JSON.parse(answer.body) as StatusView)
    }
    case 'reload': {
      if (target.admin === undefined) return signal('reload', target.pidFile, 'reload')
      const answer = await http(target, 'POST', '/api/reload')
      const outcome = parseOutcome(answer.body)
      if (answer.status === 409 && outcome !== undefined)
        throw new AdminCommandError(
          ExitCode.config,
          `reload: refused, the running configuration stays:\n${outcome.message}`,
        )
      if (answer.status !== 200 || outcome === undefined) throw fromHttp('reload', answer)
      return `${outcome.message}\n`
    }
    case 'drain': {
      if (target.admin === undefined) return signal('stop', target.pidFile, 'drain')
      const answer = await http(target, 'POST', '/api/drain')
      const outcome = parseOutcome(answer.body)
      if (answer.status !== 202 || outcome === undefined) throw fromHttp('drain', answer)
      return `${outcome.message}\n`
    }
  }
}

function resolveTarget(pidFile: string | undefined, admin: string | undefined, tokenFile: string | undefined): Target {
  if (pidFile === undefined && admin === undefined)
    throw new AdminUsageError('give --pid-file FILE (of the running server) or --admin HOST:PORT')
  const pointer = admin === undefined && pidFile !== undefined ? readAdminPointer(pidFile) : undefined
  const address = admin ?? pointer?.address
  const file = tokenFile ?? pointer?.tokenFile
  let token: string | undefined
  try {
    token = file === undefined ? undefined : readAdminToken(file)
  } catch (e) {
    throw new AdminCommandError(ExitCode.usage, (e as Error).message)
  }
  return {
    admin: address === undefined ? undefined : parseHostPort('--admin', address),
    token,
    pidFile,
  }
}

interface HttpAnswer {
  readonly status: number
  readonly body: string
}

function http(target: Target, method: 'GET' | 'POST', path: string): Promise<HttpAnswer> {
  const admin = target.admin as HostPort
  const host = admin.host.replace(/^\[|\]$/g, '')
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port: admin.port,
        method,
        path,
        headers: {
          ...(target.token === undefined ? {} : { authorization: `Bearer ${target.token}` }),
          ...(method === 'POST' ? { 'x-qtsmtpd-admin': '1' } : {}),
        },
        timeout: reloadWaitMs,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer within ${reloadWaitMs / 1000}s`)))
    req.on('error', (e) =>
      reject(
        new AdminCommandError(
          ExitCode.usage,
          `cannot reach the admin listener at ${admin.host}:${admin.port}: ${e.message}`,
        ),
      ),
    )
    req.end()
  })
}

function parseOutcome(body: string): { ok: boolean; message: string } | undefined {
  try {
    const o = JSON.parse(body) as { ok?: unknown; message?: unknown }
    return typeof o.ok === 'boolean' && typeof o.message === 'string' ? { ok: o.ok, message: o.message } : undefined
  } catch {
    return undefined
  }
}

const fromHttp = (what: string, a: HttpAnswer): AdminCommandError =>
  new AdminCommandError(
    ExitCode.usage,
    `${what}: the admin listener answered ${a.status}: ${a.body.trim().slice(0, 200)}`,
  )

/**
 * By signal to the process in the pid file (`name` leads the messages: `reload`, `drain`, or
 * the old flags `--reload`, `--stop`): SIGHUP (reload), then the server's outcome from
 * FILE.reload (server/reload-status.ts); SIGTERM (drain and stop).
 */
export async function signal(what: 'reload' | 'stop', pidFile: string | undefined, name: string): Promise<string> {
  if (pidFile === undefined) throw new AdminUsageError(`${name} needs --pid-file or --admin`)
  let pid: number
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim())
  } catch (e) {
    throw new AdminCommandError(ExitCode.usage, `${name}: cannot read ${pidFile}: ${(e as Error).message}`)
  }
  if (!Number.isInteger(pid) || pid <= 1)
    throw new AdminCommandError(ExitCode.usage, `${name}: ${pidFile} holds no process id`)
  const statusFile = reloadStatusFile(pidFile)
  // Read twice: the server may be rewriting the file at this very moment.
  const before =
    readReloadStatus(statusFile) ??
    (await new Promise((r) => setTimeout(r, 100)).then(() => readReloadStatus(statusFile)))
  try {
    process.kill(pid, what === 'reload' ? 'SIGHUP' : 'SIGTERM')
  } catch (e) {
    throw new AdminCommandError(ExitCode.usage, `${name}: process ${pid}: ${(e as Error).message}`)
  }
  const requested = `${what} requested from process ${pid}\n`
  if (what === 'stop') return requested
  process.stdout.write(requested)
  if (before === undefined)
    throw new AdminCommandError(
      ExitCode.usage,
      `${name}: cannot tell the outcome: ${statusFile} is missing (see the server's log)`,
    )
  const outcome = await awaitReloadOutcome(statusFile, before.seq, reloadWaitMs)
  if (outcome === undefined)
    throw new AdminCommandError(
      ExitCode.usage,
      `${name}: no outcome from process ${pid} within ${reloadWaitMs / 1000}s (see its log)`,
    )
  if (!outcome.ok)
    throw new AdminCommandError(
      ExitCode.config,
      `${name}: refused, the running configuration stays:\n${outcome.message}`,
    )
  return `${outcome.message}\n`
}

/** Longer than the primary gives its workers (server/primary.ts), so it hears their outcome. */
const reloadWaitMs = 75_000
