/**
 * `--workers N`: the primary process forks N workers (node:cluster) that share the listening
 * sockets; the primary binds them (as root for ports < 1024) and each worker accepts on them
 * (SCHED_NONE); the primary runs no plugin and holds no connection. A worker that dies is
 * replaced after a back-off (100 ms, doubling while workers die within 10 s of their start, at
 * most 30 s).
 * If the first workers cannot start (bad configuration, port in use) the primary stops with
 * their exit code instead of looping. Signals: HUP → `reload` to every worker; USR1 →
 * `reopen-logs` (logrotate); TERM/INT → `drain` to every worker, exit when all are gone; a
 * second TERM/INT → `exit-now`.
 */
import cluster, { type Worker } from 'node:cluster'
import { type AdminSettings, defaultAdminSettings, readAdminSettings } from '../admin/settings.ts'
import { ConfigDir, type ConfigSnapshot } from '../config/config-dir.ts'
import type { ConfigError } from '../config/config-error.ts'
import { createLogger, stderrWriter } from '../host/logger.ts'
import { type AdminListeners, ConfigGenerations, startAdminListeners } from './admin-listeners.ts'
import { ExitCode } from './exit-codes.ts'
import type { ListenerSpec } from './listeners.ts'
import { PrimaryAdmin } from './primary-admin.ts'
import { ReloadRounds } from './reload-rounds.ts'
import { createReloadStatus } from './reload-status.ts'
import { type ControlMessage, type ServeOptions, type WorkerMessage, writePidFile } from './serve.ts'
import { StartupError } from './startup-error.ts'

export const WorkerEnv = { id: 'QTSMTPD_WORKER_ID', listeners: 'QTSMTPD_LISTENERS' } as const

interface Slot {
  readonly id: number
  worker: Worker | undefined
  startedAt: number
  delayMs: number
  ready: boolean
  timer: NodeJS.Timeout | undefined
  restarts: number
}

const firstDelayMs = 100
const maxDelayMs = 30_000
const quickDeathMs = 10_000
/** How long a reload may take a worker (its plugins' set-up) before it counts as failed. */
const reloadAnswerMs = 60_000

/**
 * The admin listener's settings, for the primary, which loads no configuration: the `admin_*`
 * lines of smtpd.conf. Anything else wrong with the configuration is the workers' to report.
 */
async function primaryAdminSettings(opts: ServeOptions): Promise<AdminSettings> {
  let lines: readonly { text: string; file: string; line: number }[] = []
  try {
    const dirs = [opts.configDir, ...(opts.qmailControl === undefined ? [] : [opts.qmailControl])]
    lines = (await ConfigDir.open(dirs)).lines('smtpd.conf') ?? []
  } catch {
    return defaultAdminSettings
  }
  try {
    return readAdminSettings(lines)
  } catch (e) {
    throw new StartupError(ExitCode.config, (e as ConfigError).message)
  }
}

export async function runPrimary(opts: ServeOptions, listeners: readonly ListenerSpec[]): Promise<void> {
  const log = createLogger(stderrWriter, 6)
  const withAdmin = opts.admin !== undefined || opts.agentCheck !== undefined
  const adminSettings = withAdmin ? await primaryAdminSettings(opts) : defaultAdminSettings
  const removeOnlyPid = writePidFile(opts.pidFile)
  const reloadStatus = createReloadStatus(opts.pidFile)
  let adminListeners: AdminListeners | undefined
  const removePidFile = () => {
    adminListeners?.close()
    removeOnlyPid()
    reloadStatus.remove()
  }
  const generations = new ConfigGenerations()
  const adminReloads = new Map<number, (o: { ok: boolean; message: string }) => void>()
  let settledNow: ((o: { ok: boolean; message: string }) => void) | undefined
  const reloads = new ReloadRounds((ok, message, round) => {
    reloadStatus.report(ok, message)
    generations.reloaded(ok, message, running)
    ;(adminReloads.get(round) ?? settledNow)?.({ ok, message })
    adminReloads.delete(round)
  }, reloadAnswerMs)
  // The configuration the workers run (from the first ready worker, then from each reload one
  // took): a replacement worker builds it, whatever the files hold by then.
  let running: ConfigSnapshot | null = null
  const slots: Slot[] = Array.from({ length: opts.workers }, (_, i) => ({
    id: i + 1,
    worker: undefined,
    startedAt: 0,
    delayMs: firstDelayMs,
    ready: false,
    timer: undefined,
    restarts: 0,
  }))
  let everReady = false
  let stopping = false
  let exitCode: ExitCode = ExitCode.ok
  let exits = 0
  const live = () => slots.filter((s) => s.worker !== undefined)
  const send = (m: ControlMessage) => {
    for (const s of live()) if (s.worker?.isConnected()) s.worker.send(m)
  }
  const finish = (code: ExitCode) => {
    removePidFile()
    process.exit(code)
  }

  const fork = (slot: Slot): void => {
    slot.timer = undefined
    if (stopping) return
    if (slot.startedAt > 0) slot.restarts++
    const worker = cluster.fork({ [WorkerEnv.id]: String(slot.id), [WorkerEnv.listeners]: JSON.stringify(listeners) })
    slot.worker = worker
    slot.startedAt = Date.now()
    slot.ready = false
    log.info(`worker ${slot.id} started (pid ${worker.process.pid})`)
    worker.on('message', (m: WorkerMessage) => {
      if (m?.qtsmtpd === 'config?') return void worker.send({ qtsmtpd: 'config', snapshot: running })
      if (m?.qtsmtpd === 'report') return admin?.reports.answer(slot.id, m.id, m.report)
      if (m?.qtsmtpd === 'reloaded') {
        if (m.ok && m.snapshot !== null) running = m.snapshot
        return reloads.answer(slot.id, m.round, m.ok, m.message)
      }
      if (m?.qtsmtpd !== 'ready') return
      if (running === null) generations.loaded(m.snapshot)
      running ??= m.snapshot
      slot.ready = true
      everReady = true
      log.notice(`worker ${slot.id} ready (pid ${m.pid})`)
      if (slots.every((s) => s.ready)) log.notice(`all ${slots.length} workers ready`)
    })
    worker.on('exit', (code, signal) => {
      const how = signal ? `signal ${signal}` : `code ${code}`
      const pid = worker.process.pid
      slot.worker = undefined
      slot.ready = false
      reloads.gone(slot.id)
      admin?.reports.gone(slot.id)
      if (stopping) {
        log.info(`worker ${slot.id} (pid ${pid}) exited (${how})`)
        if (live().length === 0) {
          log.notice('all workers stopped; exiting')
          finish(exitCode)
        }
        return
      }
      if (!everReady && !slot.ready) {
        // The configuration or the listeners are broken: every worker would fail the same way.
        log.crit(`worker ${slot.id} (pid ${pid}) failed to start (${how}); stopping`)
        stopping = true
        send({ qtsmtpd: 'exit-now' })
        for (const s of slots) if (s.timer) clearTimeout(s.timer)
        exitCode = code !== null && code >= 2 && code <= 4 ? (code as ExitCode) : ExitCode.listen
        if (live().length === 0) finish(exitCode)
        setTimeout(() => finish(exitCode), 2000).unref()
        return
      }
      exits++
      const lived = Date.now() - slot.startedAt
      slot.delayMs = lived < quickDeathMs ? Math.min(slot.delayMs * 2, maxDelayMs) : firstDelayMs
      const wait = lived < quickDeathMs ? slot.delayMs : firstDelayMs
      log.error(`worker ${slot.id} (pid ${pid}) exited (${how}) after ${lived} ms; replacing in ${wait} ms`)
      slot.timer = setTimeout(() => fork(slot), wait)
    })
  }

  const stop = (sig: string): void => {
    for (const s of slots) if (s.timer) clearTimeout(s.timer)
    if (stopping) {
      log.warn(`second ${sig}: telling workers to exit now`)
      send({ qtsmtpd: 'exit-now' })
      setTimeout(() => {
        for (const s of live()) s.worker?.process.kill('SIGKILL')
        finish(ExitCode.ok)
      }, 1000).unref()
      return
    }
    stopping = true
    log.notice(`${sig}: draining ${live().length} workers (up to ${opts.drainSeconds}s)`)
    if (live().length === 0) finish(ExitCode.ok)
    send({ qtsmtpd: 'drain' })
    // Workers end by themselves after the drain; this only catches a stuck one.
    setTimeout(
      () => {
        for (const s of live()) {
          log.error(`worker ${s.id} did not stop after the drain; killing it`)
          s.worker?.process.kill('SIGKILL')
        }
      },
      opts.drainSeconds * 1000 + 15_000,
    ).unref()
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // logrotate signals the process in the pid file: the workers hold the log files.
  process.on('SIGUSR1', () => send({ qtsmtpd: 'reopen-logs' }))
  const reload = (why: string): number => {
    const targets = live().filter((s) => s.worker?.isConnected())
    log.notice(`${why}: reloading ${targets.length} workers`)
    const round = reloads.start(targets.map((s) => s.id))
    for (const s of targets) s.worker?.send({ qtsmtpd: 'reload', round })
    return round
  }
  process.on('SIGHUP', () => reload('SIGHUP'))
  const admin = withAdmin
    ? new PrimaryAdmin(
        adminSettings,
        {
          workers: () =>
            slots.map((s) => ({
              id: s.id,
              pid: s.worker?.process.pid,
              ready: s.ready && s.worker !== undefined,
              startedAt: s.worker === undefined ? undefined : s.startedAt,
              restarts: s.restarts,
            })),
          askable: () =>
            live()
              .filter((s) => s.ready && s.worker?.isConnected())
              .map((s) => ({ id: s.id, send: (m) => s.worker?.send(m) })),
          draining: () => stopping,
          exits: () => exits,
          reload: () =>
            new Promise((resolve) => {
              // A round with no worker to ask settles within start(), before its number is known.
              let settled: { ok: boolean; message: string } | undefined
              settledNow = (o) => (settled = o)
              const round = reload('qtsmtpd reload')
              settledNow = undefined
              if (settled !== undefined) resolve(settled)
              else adminReloads.set(round, resolve)
            }),
          drain: () => stop('qtsmtpd drain'),
        },
        generations,
      )
    : undefined
  if (admin !== undefined) adminListeners = await startAdminListeners(opts, admin, log)
  // The kernel hands connections to the workers (each accepts on the shared socket), not the
  // primary: in round-robin mode a connection passed to a worker that is then killed stays in
  // the primary, never greeted and never closed (node:cluster has no way to take it back).
  cluster.schedulingPolicy = cluster.SCHED_NONE
  log.notice(`primary (pid ${process.pid}) starting ${slots.length} workers`)
  for (const s of slots) fork(s)
}
