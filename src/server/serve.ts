/**
 * One serving process (alone, or as a worker of primary.ts): bind the listeners, drop
 * privileges, load the configuration (a worker: the one the primary says the others run),
 * serve. SIGHUP (or the primary's `reload`) reloads for new connections, keeps the running
 * configuration if the new one is broken, and reports the outcome (reload-status.ts).
 * SIGTERM/SIGINT (or `drain`) stops accepting, lets sessions finish for --drain seconds, then
 * closes the rest with 421 and exits 0; a second SIGTERM/SIGINT (or `exit-now`) exits at once.
 * An uncaught exception or unhandled rejection drains the same way and exits 70. SIGUSR1 (or
 * `reopen-logs`) reopens the logging plugins' files, for logrotate.
 * Plugin code never runs as root when --user is given: the configuration is loaded after the drop.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import type { ProcessReport, ReportRequest } from '../admin/report.ts'
import type { HostPort } from '../admin/settings.ts'
import type { ConfigSnapshot } from '../config/config-dir.ts'
import { ConfigError } from '../config/config-error.ts'
import type { ListenerInfo } from '../host/context.ts'
import { createLogger, type Logger, type LogWriter, stderrWriter } from '../host/logger.ts'
import { type AdminListeners, ConfigGenerations, startAdminListeners } from './admin-listeners.ts'
import { ExitCode } from './exit-codes.ts'
import { BoundListeners, type ListenerSpec } from './listeners.ts'
import { runtimeFromConfigDir } from './load-runtime.ts'
import { LocalAdmin } from './local-admin.ts'
import { dropPrivileges, type Identity, resolveIdentity } from './privileges.ts'
import { processReport, type ReportSource } from './process-report.ts'
import { ProcessServices } from './process-services.ts'
import { ReloadQueue } from './reload-queue.ts'
import { createReloadStatus } from './reload-status.ts'
import type { Runtime } from './runtime.ts'
import { SmtpServer } from './smtp-server.ts'
import { StartupError } from './startup-error.ts'

/** How to serve: what the command line (cli/args.ts) or an embedding program gives. */
export interface ServeOptions {
  readonly configDir: string
  /** qmail's control directory, searched after configDir (--qmail-control). */
  readonly qmailControl: string | undefined
  readonly pidFile: string | undefined
  readonly drainSeconds: number
  readonly maxConnections: number | undefined
  readonly maxConnectionsPerIp: number | undefined
  /** Worker processes; 0 = run in this process, no primary. */
  readonly workers: number
  readonly user: string | undefined
  readonly group: string | undefined
  /** The admin listener (metrics, health, status page); off when undefined. */
  readonly admin: HostPort | undefined
  readonly adminTokenFile: string | undefined
  /** HAProxy's agent-check listener; off when undefined. */
  readonly agentCheck: HostPort | undefined
}

/** Primary → worker. `config` answers `config?` with the configuration the workers run. */
export type ControlMessage =
  | { readonly qtsmtpd: 'reload'; readonly round: number }
  | { readonly qtsmtpd: 'drain' | 'exit-now' | 'reopen-logs' }
  | { readonly qtsmtpd: 'config'; readonly snapshot: ConfigSnapshot | null }
  | { readonly qtsmtpd: 'report?'; readonly id: number; readonly request: ReportRequest }

/**
 * Worker → primary: `config?` before loading (a replacement builds what the others run),
 * `ready` once it serves, `reloaded` after each reload the primary asked for, `report` to
 * each `report?` (the admin listener's metrics and status).
 */
export type WorkerMessage =
  | { readonly qtsmtpd: 'config?' }
  | { readonly qtsmtpd: 'ready'; readonly pid: number; readonly snapshot: ConfigSnapshot | null }
  | {
      readonly qtsmtpd: 'reloaded'
      readonly round: number
      readonly ok: boolean
      readonly message: string
      readonly snapshot: ConfigSnapshot | null
    }
  | { readonly qtsmtpd: 'report'; readonly id: number; readonly report: ProcessReport }

export interface WorkerRole {
  readonly id: number
  readonly send: (m: WorkerMessage) => void
}

export { StartupError }

/**
 * `logWriter`: where entries go when no logging plugin is loaded (stderr by default);
 * `snapshot`: configuration keys to take from an earlier load instead of the files;
 * `listeners`: those it will serve, when known, so that listener selectors are checked against them;
 * `services`: the process's (store, DNS, metrics), kept across reloads; absent, the runtime
 * opens its own and closes them with itself.
 */
export async function loadRuntime(
  opts: ServeOptions,
  logWriter?: LogWriter,
  snapshot?: ConfigSnapshot,
  listeners?: readonly ListenerInfo[],
  services?: ProcessServices,
): Promise<Runtime> {
  try {
    return await runtimeFromConfigDir(opts.configDir, {
      fallbackDirs: opts.qmailControl === undefined ? [] : [opts.qmailControl],
      logWriter,
      snapshot,
      listeners,
      services,
    })
  } catch (e) {
    throw new StartupError(
      ExitCode.config,
      e instanceof ConfigError ? e.message : `configuration: ${(e as Error).message}`,
    )
  }
}

/**
 * A worker asks the primary for the configuration the other workers run (none at the first
 * start): after a refused reload the files hold one nobody runs.
 */
async function runningConfig(worker: WorkerRole): Promise<ConfigSnapshot | undefined> {
  return new Promise((resolve) => {
    const done = (snapshot: ConfigSnapshot | undefined) => {
      clearTimeout(timer)
      process.off('message', onMessage)
      resolve(snapshot)
    }
    const onMessage = (m: ControlMessage) => {
      if (m?.qtsmtpd === 'config') done(m.snapshot ?? undefined)
    }
    // A primary that does not answer (it is gone) leaves the files as the only source.
    const timer = setTimeout(() => done(undefined), 10_000)
    process.on('message', onMessage)
    worker.send({ qtsmtpd: 'config?' })
  })
}

export function identityFrom(opts: ServeOptions): Identity | undefined {
  if (opts.user === undefined) return undefined
  try {
    return resolveIdentity(opts.user, opts.group)
  } catch (e) {
    throw new StartupError(ExitCode.privileges, (e as Error).message)
  }
}

export function becomeIdentity(id: Identity | undefined, log: Logger): void {
  if (id === undefined) return
  try {
    dropPrivileges(id)
  } catch (e) {
    throw new StartupError(ExitCode.privileges, `cannot become ${id.user}:${id.group}: ${(e as Error).message}`)
  }
  log.info(`running as ${id.user}:${id.group} (uid ${id.uid}, gid ${id.gid})`)
}

export function writePidFile(file: string | undefined): () => void {
  if (file === undefined) return () => {}
  writeFileSync(file, `${process.pid}\n`)
  return () => {
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file)
    } catch {}
  }
}

export async function serve(
  opts: ServeOptions,
  listeners: readonly ListenerSpec[],
  worker?: WorkerRole,
): Promise<void> {
  const who = worker === undefined ? '' : `worker ${worker.id} (pid ${process.pid}): `
  // First thing: a process with no SIGUSR1 listener answers the signal by starting Node's inspector.
  let reopenLogs = (): void => {}
  process.on('SIGUSR1', () => reopenLogs())
  const bootLog = createLogger(stderrWriter, 6)
  const identity = identityFrom(opts)
  let bound: BoundListeners
  try {
    bound = await BoundListeners.bind(listeners, (name, e) => bootLog.error(`${who}listener ${name}: ${e.message}`))
  } catch (e) {
    throw new StartupError(ExitCode.listen, `cannot listen: ${(e as Error).message}`)
  }
  // Written as root (before the drop), as most daemons do, so it may live in /run. With
  // --workers the primary writes both.
  let removePidFile = () => {}
  let reloadStatus = createReloadStatus(undefined)
  try {
    if (worker === undefined) {
      removePidFile = writePidFile(opts.pidFile)
      reloadStatus = createReloadStatus(opts.pidFile, identity)
      const removeOnlyPid = removePidFile
      removePidFile = () => {
        removeOnlyPid()
        reloadStatus.remove()
      }
    }
  } catch (e) {
    throw new StartupError(ExitCode.listen, `cannot write the pid file: ${(e as Error).message}`)
  }
  const generations = new ConfigGenerations()
  // A single process runs its own admin listener (a worker's primary runs it for all), bound
  // before the drop like the SMTP listeners; it says `starting` until the configuration is loaded.
  const localAdmin = worker === undefined ? new LocalAdmin(generations) : undefined
  let adminListeners: AdminListeners | undefined
  if (localAdmin !== undefined) adminListeners = await startAdminListeners(opts, localAdmin, bootLog)
  becomeIdentity(identity, bootLog)
  const served = bound.servers.map((s) => s.info)
  // Opened with the first configuration (after the privilege drop: the store file belongs to
  // --user), kept by every reload, closed at exit.
  let serviceLog: () => Logger = () => bootLog
  const services = new ProcessServices({ warn: (m) => serviceLog().warn(`${who}${m}`) })
  let runtime: Runtime
  try {
    runtime = await loadRuntime(
      opts,
      undefined,
      worker === undefined ? undefined : await runningConfig(worker),
      served,
      services,
    )
  } catch (e) {
    adminListeners?.close()
    await services.close()
    throw e
  }
  generations.loaded(runtime.configSnapshot?.())
  const server = new SmtpServer(runtime, {
    ...(opts.maxConnections === undefined ? {} : { maxConnections: opts.maxConnections }),
    ...(opts.maxConnectionsPerIp === undefined ? {} : { maxConnectionsPerIp: opts.maxConnectionsPerIp }),
    ...(services.admin === undefined ? {} : { recentVerdicts: services.admin.recentVerdicts }),
  })
  server.serve(bound)
  const log = () => server.runtime.log
  serviceLog = log
  reopenLogs = () => {
    server.reopenLogs()
    log().notice(`${who}log files reopened`)
  }
  const where = bound.addresses.map((a) => `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`)
  const reloads = new ReloadQueue(
    async (why) => {
      log().notice(`${who}reloading the configuration (${why})`)
      try {
        const next = await loadRuntime(opts, undefined, undefined, served, services)
        server.swapRuntime(next)
        next.log.notice(`${who}configuration reloaded; new connections use it`)
        return { ok: true, message: 'configuration reloaded' }
      } catch (e) {
        const message = (e as Error).message
        // One entry per problem: the log escapes newlines, so several in one entry would be one line.
        for (const problem of message.split('\n'))
          log().error(`${who}reload refused, keeping the running configuration: ${problem}`)
        return { ok: false, message }
      }
    },
    (outcome, rounds) => {
      reloadStatus.report(outcome.ok, outcome.message)
      const snapshot = outcome.ok ? (server.runtime.configSnapshot?.() ?? null) : null
      generations.reloaded(outcome.ok, outcome.message, snapshot)
      for (const round of rounds) {
        // Negative rounds are the admin listener's (`qtsmtpd reload`), positive ones the primary's.
        if (round < 0) adminReloads.get(round)?.(outcome)
        adminReloads.delete(round)
        if (round > 0) worker?.send({ qtsmtpd: 'reloaded', round, ...outcome, snapshot })
      }
    },
  )
  const adminReloads = new Map<number, (o: { ok: boolean; message: string }) => void>()
  let lastAdminReload = 0
  const reportSource: ReportSource = {
    worker: worker?.id ?? 0,
    startedAt: Date.now(),
    config: () => generations.current ?? { generation: 0, digest: '-', loadedAt: 0 },
    metrics: () => services.snapshot(),
  }
  let stopping = false
  let exitCode: ExitCode = ExitCode.ok
  const exitNow = (why: string): void => {
    log().warn(`${who}${why}: exiting now, cutting ${server.connectionCount} open sessions`)
    adminListeners?.close()
    removePidFile()
    process.exit(exitCode)
  }
  const drain = (why: string): void => {
    if (stopping) return
    stopping = true
    log().notice(
      `${who}draining (${why}): not accepting; up to ${opts.drainSeconds}s for ${server.connectionCount} open sessions`,
    )
    void server.close(opts.drainSeconds * 1000).then(async (r) => {
      log().notice(`${who}stopped: ${r.finished} sessions finished, ${r.forced} closed with 421`)
      await reloads.idle()
      await server.runtime.close().catch(() => {})
      await services.close().catch(() => {})
      adminListeners?.close()
      removePidFile()
      process.exit(exitCode)
    })
  }
  // An error nobody caught leaves the process in an unknown state (a plugin's bug, most
  // likely): carrying on could serve clients wrongly for good. Open sessions may finish, then
  // the process exits 70 and a fresh one takes over: the primary replaces a worker; a single
  // process relies on its supervisor (systemd Restart=on-failure). Other workers serve on.
  const crash = (what: string, e: unknown): void => {
    log().crit(`${who}${what}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
    exitCode = ExitCode.internal
    drain(what)
  }
  process.on('uncaughtException', (e) => crash('uncaught exception', e))
  process.on('unhandledRejection', (e) => crash('unhandled rejection', e))
  const onSignal = (sig: string) => () => (stopping ? exitNow(`second ${sig}`) : drain(sig))
  process.on('SIGTERM', onSignal('SIGTERM'))
  process.on('SIGINT', onSignal('SIGINT'))
  process.on('SIGHUP', () => reloads.request('SIGHUP'))
  if (worker !== undefined) {
    process.on('message', (m: ControlMessage) => {
      if (m?.qtsmtpd === 'reload') reloads.request('primary', m.round)
      else if (m?.qtsmtpd === 'drain') drain('primary')
      else if (m?.qtsmtpd === 'exit-now') exitNow('primary')
      else if (m?.qtsmtpd === 'reopen-logs') reopenLogs()
      else if (m?.qtsmtpd === 'report?')
        worker.send({ qtsmtpd: 'report', id: m.id, report: processReport(server, reportSource, m.request) })
    })
    // The primary is gone (killed with SIGKILL): finish what is open and go.
    process.on('disconnect', () => drain('primary gone'))
  }
  localAdmin?.attach({
    server,
    source: reportSource,
    settings: services.admin ?? localAdmin.settings,
    reload: () =>
      new Promise((resolve) => {
        const round = --lastAdminReload
        adminReloads.set(round, resolve)
        reloads.request('qtsmtpd reload', round)
      }),
    drain: () => drain('qtsmtpd drain'),
    draining: () => stopping,
  })
  // Only now: a SIGHUP sent on seeing this line must find its handler (without one, it kills).
  log().notice(`${who}ready: pid ${process.pid}, listening on ${where.join(' ')}`)
  worker?.send({ qtsmtpd: 'ready', pid: process.pid, snapshot: runtime.configSnapshot?.() ?? null })
}
