/**
 * startTestServer: a real server on 127.0.0.1 and an ephemeral port, built from plugins
 * given in code or from a qpsmtpd-style config directory. Used by every built-in plugin's
 * tests and shipped for plugin authors.
 *
 * @example
 *   const srv = await startTestServer({ plugins: [rcptOk()], config: { rcpthosts: ['example.com'] } })
 *   const c = await srv.connect()
 *   await c.expect(220); await c.send('EHLO client.test', 250)
 *   ...; assert.equal(srv.queued.length, 1); await srv.close()
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Clock, systemClock } from '../clock/index.ts'
import { objectConfigSource } from '../config/config-source.ts'
import type { DnsResolver } from '../dns/index.ts'
import type { PluginChoice } from '../host/define-plugin.ts'
import type { LogEntry, LogLevel } from '../host/logger.ts'
import { type MemoryMetrics, memoryMetrics } from '../metrics/index.ts'
import type { Net } from '../net/index.ts'
import tlsPlugin from '../plugins/tls.ts'
import { sessionSettings } from '../server/core-settings.ts'
import { BoundListeners } from '../server/listeners.ts'
import { readConfigDir } from '../server/load-config.ts'
import { buildRuntime, type Runtime } from '../server/runtime.ts'
import { type ListenerSpec, type ServerLimits, SmtpServer } from '../server/smtp-server.ts'
import type { Limits, Policies, Timeouts } from '../session/settings.ts'
import { memoryStore, type Store } from '../store/index.ts'
import { makeCertificate } from './certs.ts'
import { SmtpTestClient } from './client.ts'
import { createMemoryQueue, type QueuedMessage } from './memory-queue.ts'

export interface TestServerOptions {
  /** Plugins in order. A memory queue is appended unless `memoryQueue: false`. */
  readonly plugins?: readonly PluginChoice[]
  /** Flat config files as an object: `{ me: 'mx.test', rcpthosts: ['example.com'] }`. */
  readonly config?: Readonly<Record<string, string | readonly string[]>>
  /** Or a qpsmtpd-layout config directory (then `plugins` comes from its `plugins` file). */
  readonly configDir?: string
  /**
   * Where relative paths in plugin options point (`api.paths`): with `configDir`, the directory
   * holding it, as in production; otherwise this, or the working directory.
   */
  readonly baseDir?: string
  readonly limits?: Partial<Limits>
  readonly timeouts?: Partial<Timeouts>
  readonly policies?: Partial<Policies>
  readonly serverLimits?: Partial<ServerLimits>
  readonly me?: string
  /** Make a certificate and offer STARTTLS (and an smtps listener). */
  readonly tls?: boolean
  readonly memoryQueue?: boolean
  readonly logLevel?: LogLevel
  readonly spoolMemoryThreshold?: number
  /**
   * Default: one smtp listener (and an smtps one with `tls`). Listener selectors in
   * config/plugins are checked against these names (`name`, or `role:port`).
   */
  readonly listeners?: readonly ListenerSpec[]
  /** The metrics registry plugins and the runner record into (default: a fresh one, `srv.metrics`). */
  readonly metrics?: MemoryMetrics
  /** The plugins' clock (default: the system clock); a `fakeClock()` moves only when told. */
  readonly clock?: Clock
  /**
   * The plugins' DNS: `scriptedDns({...})` for logic, a real resolver pointed at a test server
   * for integration. Default: none, so no test sends a real DNS query; a plugin that requires
   * `dns` then fails to start with a message saying to pass one.
   */
  readonly dns?: DnsResolver
  /** The plugins' store (default: a memory store on `clock`, closed with the server). */
  readonly store?: Store
  /** The plugins' network (default: the real one: connections, pools, child processes). */
  readonly net?: Net
}

export interface TestServer {
  readonly host: string
  readonly port: number
  /** The implicit-TLS port, when `tls` was asked for. */
  readonly smtpsPort: number | undefined
  /** Every listener's port, in the order of `listeners`. */
  readonly ports: readonly number[]
  readonly server: SmtpServer
  readonly runtime: Runtime
  /** Messages the memory queue accepted, in order. */
  readonly queued: QueuedMessage[]
  /** Log entries, for assertions on what was logged. */
  readonly logs: LogEntry[]
  readonly spoolDir: string
  /** What the plugins and the hook runner recorded (qtsmtpd_hook_* per plugin and hook). */
  readonly metrics: MemoryMetrics
  readonly clock: Clock
  /** The whole store; a plugin sees `store.scope(<its name>)`. */
  readonly store: Store
  readonly dns: DnsResolver | undefined
  /** To the first listener, the smtps one with `tls`, or the one on `port`. */
  connect(opts?: { tls?: boolean; port?: number }): Promise<SmtpTestClient>
  close(): Promise<void>
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const spoolDir = await mkdtemp(join(tmpdir(), 'qtsmtpd-test-spool-'))
  const logs: LogEntry[] = []
  const memory = createMemoryQueue()
  const cert = opts.tls ? await makeCertificate('localhost') : undefined
  // TLS the way an operator turns it on: the tls plugin with a certificate and key.
  const tls = cert === undefined ? [] : [tlsPlugin({ cert: cert.certFile, key: cert.keyFile })]
  const metrics = opts.metrics ?? memoryMetrics()
  const clock = opts.clock ?? systemClock
  const store = opts.store ?? memoryStore({ now: () => clock.now() })
  const services = { metrics, clock, store, dns: opts.dns, net: opts.net }
  const absentServices = {
    dns: 'startTestServer was given no dns; pass one, e.g. startTestServer({ dns: scriptedDns({ ... }) }) (qtsmtpd/testing)',
  }
  const listeners = opts.listeners ?? [
    { host: '127.0.0.1', port: 0, role: 'smtp' as const },
    ...(cert ? [{ host: '127.0.0.1', port: 0, role: 'smtps' as const }] : []),
  ]
  // Bound first, as the daemon does, so that the runtime knows the listeners' names.
  const bound = await BoundListeners.bind(listeners, (name, e) =>
    logs.push({ level: 3, time: new Date(), message: `listener ${name}: ${e.message}` }),
  )
  const served = bound.servers.map((b) => b.info)
  const buildTestRuntime = async (): Promise<Runtime> => {
    if (opts.configDir !== undefined) {
      const loaded = await readConfigDir(opts.configDir)
      const plugins = [
        ...tls,
        ...loaded.plugins,
        ...(opts.plugins ?? []),
        ...(opts.memoryQueue === false ? [] : [memory.plugin()]),
      ]
      return buildRuntime({
        settings: {
          ...loaded.settings,
          spoolDir,
          limits: { ...loaded.settings.limits, ...opts.limits },
          timeouts: { ...loaded.settings.timeouts, ...opts.timeouts },
          policies: { ...loaded.settings.policies, ...opts.policies },
        },
        plugins,
        config: loaded.source,
        baseDir: loaded.baseDir,
        services,
        absentServices,
        logLevel: opts.logLevel ?? 7,
        logFormat: loaded.logFormat,
        logWriter: (e) => logs.push(e),
        listeners: served,
      })
    }
    const me = opts.me ?? 'mx.test'
    const plugins = [...tls, ...(opts.plugins ?? []), ...(opts.memoryQueue === false ? [] : [memory.plugin()])]
    return buildRuntime({
      settings: sessionSettings({
        me,
        limits: opts.limits ?? {},
        timeouts: { errorDelayMs: 0, authFailureDelayMs: 0, ...opts.timeouts },
        policies: opts.policies ?? {},
        spoolDir,
        ...(opts.spoolMemoryThreshold === undefined ? {} : { spoolMemoryThreshold: opts.spoolMemoryThreshold }),
      }),
      plugins,
      config: objectConfigSource({ me, ...opts.config }),
      baseDir: opts.baseDir,
      services,
      absentServices,
      logLevel: opts.logLevel ?? 7,
      logWriter: (e) => logs.push(e),
      listeners: served,
    })
  }
  let runtime: Runtime
  try {
    runtime = await buildTestRuntime()
  } catch (e) {
    bound.close()
    throw e
  }
  const server = new SmtpServer(runtime, opts.serverLimits)
  server.serve(bound)
  const addresses = bound.addresses
  const port = addresses[0]?.port ?? 0
  const smtpsIndex = listeners.findIndex((l) => l.role === 'smtps')
  const smtpsPort = smtpsIndex >= 0 ? addresses[smtpsIndex]?.port : undefined
  const clients: SmtpTestClient[] = []
  return {
    host: '127.0.0.1',
    port,
    smtpsPort,
    ports: addresses.map((a) => a.port),
    server,
    runtime,
    queued: memory.messages,
    logs,
    spoolDir,
    metrics,
    clock,
    store,
    dns: opts.dns,
    async connect(c = {}) {
      const client = await SmtpTestClient.connect(c.port ?? (c.tls ? (smtpsPort ?? port) : port), '127.0.0.1', {
        tls: c.tls === true,
      })
      clients.push(client)
      return client
    },
    async close() {
      for (const c of clients) c.destroy()
      await server.close(0)
      await server.runtime.close()
      // A store the test passed belongs to the test.
      if (opts.store === undefined) await store.close()
      await rm(spoolDir, { recursive: true, force: true })
      if (cert) await rm(cert.dir, { recursive: true, force: true })
    },
  }
}
