/**
 * qtsmtpd's entry point: arguments → one of the process modes. `--check` validates,
 * `--stdio` serves one session on stdin/stdout, `--workers N` runs a primary and N workers
 * (server/primary.ts), otherwise one process serves (server/serve.ts). Exit codes are in
 * server/exit-codes.ts and docs/running.md.
 */
import cluster from 'node:cluster'
import { readFileSync } from 'node:fs'
import { configErrorsIn } from '../config/config-error.ts'
import { createLogger, type LogEntry, stderrWriter } from '../host/logger.ts'
import { ExitCode } from '../server/exit-codes.ts'
import { type ListenerSpec, plannedListenerInfo, socketActivationSpecs } from '../server/listeners.ts'
import { runPrimary, WorkerEnv } from '../server/primary.ts'
import { awaitReloadOutcome, readReloadStatus, reloadStatusFile } from '../server/reload-status.ts'
import { becomeIdentity, identityFrom, loadRuntime, StartupError, serve } from '../server/serve.ts'
import { StateUsageError } from '../server/state-commands.ts'
import { runStdio } from '../server/stdio.ts'
import { version } from '../version.ts'
import { type CliOptions, defaultListen, parseCli, parseListen, usage } from './args.ts'
import { dkimKeygen, KeygenUsageError, keygenUsage } from './dkim-keygen.ts'
import { isStateCommand, runStateCommand, stateUsage } from './state.ts'

function fail(code: ExitCode, message: string): never {
  process.stderr.write(`qtsmtpd: ${message}\n`)
  process.exit(code)
}

const describeEntry = (e: LogEntry): string => (e.plugin === undefined ? e.message : `${e.plugin}: ${e.message}`)

/** Every configuration problem on its own line, as a compiler lists its errors, then a count. */
function failConfig(message: string): never {
  const lines = message.split('\n')
  for (const l of lines) process.stderr.write(`qtsmtpd: ${l}\n`)
  if (lines.length > 1) process.stderr.write(`qtsmtpd: ${lines.length} configuration errors\n`)
  process.exit(ExitCode.config)
}

function listenersFor(opts: CliOptions): ListenerSpec[] {
  if (cluster.isWorker) {
    const fromPrimary = process.env[WorkerEnv.listeners]
    if (fromPrimary !== undefined) return JSON.parse(fromPrimary) as ListenerSpec[]
  }
  const activated = socketActivationSpecs(process.env, process.pid)
  if (opts.listeners !== undefined) return [...opts.listeners]
  return activated ?? [parseListen(defaultListen)]
}

/**
 * `--reload` / `--stop`: the admin commands, as SIGHUP / SIGTERM to the server in the pid file.
 * `--reload` then waits for the server's outcome (server/reload-status.ts) and fails, saying
 * why, when the configuration was refused.
 */
async function control(what: 'reload' | 'stop', pidFile: string): Promise<void> {
  let pid: number
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim())
  } catch (e) {
    fail(ExitCode.usage, `--${what}: cannot read ${pidFile}: ${(e as Error).message}`)
  }
  if (!Number.isInteger(pid) || pid <= 1) fail(ExitCode.usage, `--${what}: ${pidFile} holds no process id`)
  const statusFile = reloadStatusFile(pidFile)
  // Read twice: the server may be rewriting the file at this very moment.
  const before =
    readReloadStatus(statusFile) ??
    (await new Promise((r) => setTimeout(r, 100)).then(() => readReloadStatus(statusFile)))
  try {
    process.kill(pid, what === 'reload' ? 'SIGHUP' : 'SIGTERM')
  } catch (e) {
    fail(ExitCode.usage, `--${what}: process ${pid}: ${(e as Error).message}`)
  }
  process.stdout.write(`${what === 'reload' ? 'reload' : 'stop'} requested from process ${pid}\n`)
  if (what === 'stop') return
  if (before === undefined)
    fail(ExitCode.usage, `--reload: cannot tell the outcome: ${statusFile} is missing (see the server's log)`)
  const outcome = await awaitReloadOutcome(statusFile, before.seq, reloadWaitMs)
  if (outcome === undefined)
    fail(ExitCode.usage, `--reload: no outcome from process ${pid} within ${reloadWaitMs / 1000}s (see its log)`)
  if (!outcome.ok) fail(ExitCode.config, `--reload: refused, the running configuration stays:\n${outcome.message}`)
  process.stdout.write(`${outcome.message}\n`)
}

/** Longer than the primary gives its workers (server/primary.ts), so it hears their outcome. */
const reloadWaitMs = 75_000

export async function main(argv: readonly string[]): Promise<void> {
  if (argv[0] === 'dkim-keygen') {
    if (argv.includes('--help') || argv.includes('-h')) return void process.stdout.write(keygenUsage)
    try {
      return void process.stdout.write(await dkimKeygen(argv.slice(1)))
    } catch (e) {
      fail(
        ExitCode.usage,
        e instanceof KeygenUsageError ? `${e.message}\n${keygenUsage}` : `dkim-keygen: ${(e as Error).message}`,
      )
    }
  }
  if (isStateCommand(argv[0])) {
    if (argv.includes('--help') || argv.includes('-h')) return void process.stdout.write(stateUsage)
    try {
      return void process.stdout.write(await runStateCommand(argv[0], argv.slice(1)))
    } catch (e) {
      if (e instanceof StateUsageError) fail(ExitCode.usage, `${e.message}\n${stateUsage}`)
      if (configErrorsIn(e) !== undefined) failConfig((e as Error).message)
      fail(ExitCode.usage, `${argv[0]}: ${(e as Error).message}`)
    }
  }
  let opts: CliOptions
  try {
    opts = parseCli(argv)
  } catch (e) {
    fail(ExitCode.usage, `${(e as Error).message}\n${usage}`)
  }
  if (opts.help) return void process.stdout.write(usage)
  if (opts.version) return void process.stdout.write(`qtsmtpd ${version}\n`)
  if (opts.control !== undefined && opts.pidFile !== undefined) return await control(opts.control, opts.pidFile)
  try {
    if (opts.check) {
      becomeIdentity(identityFrom(opts), createLogger(stderrWriter, 6))
      // Listener selectors are checked against the --listen given with --check, if any.
      const planned = opts.listeners?.map(plannedListenerInfo)
      const listeners = planned?.every((l) => l !== undefined) ? planned : undefined
      // Warnings go to stderr here even when config/logging sends the log to a file.
      const runtime = await loadRuntime(opts, () => {}, undefined, listeners)
      for (const w of runtime.startupWarnings) process.stderr.write(`qtsmtpd: warning: ${describeEntry(w)}\n`)
      await runtime.close()
      process.stdout.write('configuration OK\n')
      return
    }
    if (opts.stdio) return await runStdio(opts)
    const listeners = listenersFor(opts)
    if (cluster.isWorker) {
      const id = Number(process.env[WorkerEnv.id] ?? '0')
      return await serve(opts, listeners, { id, send: (m) => process.send?.(m) })
    }
    if (opts.workers > 0) return await runPrimary(opts, listeners)
    await serve(opts, listeners)
  } catch (e) {
    if (e instanceof StartupError && e.code === ExitCode.config) failConfig(e.message)
    if (e instanceof StartupError) fail(e.code, e.message)
    throw e
  }
}
