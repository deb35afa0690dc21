/**
 * qtsmtpd's entry point: arguments → one of the process modes. `--check` validates,
 * `--stdio` serves one session on stdin/stdout, `--workers N` runs a primary and N workers
 * (server/primary.ts), otherwise one process serves (server/serve.ts). Exit codes are in
 * server/exit-codes.ts and docs/running.md.
 */
import cluster from 'node:cluster'
import { configErrorsIn } from '../config/config-error.ts'
import { createLogger, type LogEntry, stderrWriter } from '../host/logger.ts'
import { ExitCode } from '../server/exit-codes.ts'
import { type ListenerSpec, plannedListenerInfo, socketActivationSpecs } from '../server/listeners.ts'
import { runPrimary, WorkerEnv } from '../server/primary.ts'
import { becomeIdentity, identityFrom, loadRuntime, StartupError, serve } from '../server/serve.ts'
import { StateUsageError } from '../server/state-commands.ts'
import { runStdio } from '../server/stdio.ts'
import { version } from '../version.ts'
import { AdminCommandError, adminUsage, isAdminCommand, runAdminCommand, signal } from './admin-commands.ts'
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
  if (isAdminCommand(argv[0])) {
    if (argv.includes('--help') || argv.includes('-h')) return void process.stdout.write(adminUsage)
    try {
      return void process.stdout.write(await runAdminCommand(argv[0], argv.slice(1)))
    } catch (e) {
      if (e instanceof AdminCommandError && e.code === ExitCode.config) failConfig(e.message)
      if (e instanceof AdminCommandError) fail(e.code, e.message)
      if (configErrorsIn(e) !== undefined) failConfig((e as Error).message)
      fail(ExitCode.usage, `${(e as Error).message}\n${adminUsage}`)
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
  if (opts.control !== undefined && opts.pidFile !== undefined) {
    try {
      return void process.stdout.write(await signal(opts.control, opts.pidFile, `--${opts.control}`))
    } catch (e) {
      if (e instanceof AdminCommandError) fail(e.code, e.message)
      throw e
    }
  }
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
    if (opts.stdio) return await runStdio(opts, opts.stdioRole)
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
