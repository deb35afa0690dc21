/**
 * qtsmtpd's entry point: arguments → configuration → runtime → listening server, and the
 * signals: SIGHUP reloads (new connections get the new configuration; a broken one is
 * refused and the old stays), SIGTERM drains (stop accepting, finish sessions, then 421),
 * a second SIGTERM exits at once.
 *
 * Exit codes: 0 normal stop, 1 bad arguments, 2 bad configuration, 3 cannot listen.
 */
import { writeFileSync } from 'node:fs'
import { ConfigError } from '../config/config-error.ts'
import { readConfigDir } from '../config/load.ts'
import { buildRuntime, type Runtime } from '../server/runtime.ts'
import { SmtpServer } from '../server/smtp-server.ts'
import { version } from '../version.ts'
import { type CliOptions, parseCli, usage } from './args.ts'

async function loadRuntime(opts: CliOptions): Promise<Runtime> {
  const loaded = await readConfigDir(opts.configDir, {
    fallbackDirs: opts.qmailControl === undefined ? [] : [opts.qmailControl],
  })
  return buildRuntime({
    settings: loaded.settings,
    plugins: loaded.plugins,
    config: loaded.source,
    logLevel: loaded.logLevel,
  })
}

function fail(code: number, message: string): never {
  process.stderr.write(`qtsmtpd: ${message}\n`)
  process.exit(code)
}

export async function main(argv: readonly string[]): Promise<void> {
  let opts: CliOptions
  try {
    opts = parseCli(argv)
  } catch (e) {
    fail(1, `${(e as Error).message}\n${usage}`)
  }
  if (opts.help) return void process.stdout.write(usage)
  if (opts.version) return void process.stdout.write(`qtsmtpd ${version}\n`)

  let runtime: Runtime
  try {
    runtime = await loadRuntime(opts)
  } catch (e) {
    fail(2, e instanceof ConfigError ? e.message : `configuration: ${(e as Error).message}`)
  }
  if (opts.check) {
    await runtime.close()
    process.stdout.write('configuration OK\n')
    return
  }

  const server = new SmtpServer(runtime, {
    ...(opts.maxConnections === undefined ? {} : { maxConnections: opts.maxConnections }),
    ...(opts.maxConnectionsPerIp === undefined ? {} : { maxConnectionsPerIp: opts.maxConnectionsPerIp }),
  })
  try {
    const addresses = await server.listen(opts.listeners)
    for (const a of addresses) runtime.log.notice(`listening on ${a.address}:${a.port}`)
  } catch (e) {
    fail(3, `cannot listen: ${(e as Error).message}`)
  }
  if (opts.pidFile !== undefined) writeFileSync(opts.pidFile, `${process.pid}\n`)
  // One failing connection or plugin must never take the whole server down (Haraka #3400).
  process.on('uncaughtException', (e) => server.runtime.log.crit(`uncaught exception: ${e.stack ?? e.message}`))
  process.on('unhandledRejection', (e) => server.runtime.log.crit(`unhandled rejection: ${String(e)}`))

  process.on('SIGHUP', () => {
    void (async () => {
      try {
        const next = await loadRuntime(opts)
        const old = server.swapRuntime(next)
        next.log.notice('configuration reloaded; new connections use it')
        // Plugins of the old runtime may still serve open sessions; they are closed at exit.
        retired.push(old)
      } catch (e) {
        server.runtime.log.error(`reload refused, keeping the running configuration: ${(e as Error).message}`)
      }
    })()
  })
  const retired: Runtime[] = []
  let stopping = false
  const stop = () => {
    if (stopping) {
      server.runtime.log.warn('second SIGTERM: exiting now')
      process.exit(0)
    }
    stopping = true
    server.runtime.log.notice(`draining: up to ${opts.drainSeconds}s for open sessions`)
    void server.close(opts.drainSeconds * 1000).then(async () => {
      for (const r of [server.runtime, ...retired]) await r.close()
      process.exit(0)
    })
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}
