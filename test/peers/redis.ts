/**
 * Private redis-server instances for tests (Debian redis-server): loopback only, an ephemeral
 * port, no persistence, files in a temp dir. `stop()` and `start()` again on the same port
 * let a test take Redis away in the middle of a run; `pause()`/`resume()` (SIGSTOP/SIGCONT)
 * make it hang instead. Also a Sentinel watching one master, and a three-master Cluster.
 * Always call `close()`, also when a test fails.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, waitForPort } from './free-port.ts'

const run = promisify(execFile)

export interface RedisServer {
  readonly port: number
  readonly url: string
  readonly dir: string
  /** The redis-server process, while it runs (for CPU accounting). */
  readonly pid: number | undefined
  /** Starts it again on the same port (after stop()). */
  start(): Promise<void>
  /** Ends it (SIGTERM; SIGKILL after 5 s) and waits until it is gone. */
  stop(): Promise<void>
  pause(): void
  resume(): void
  /** redis-cli against this server; resolves to its output. */
  cli(...args: string[]): Promise<string>
  close(): Promise<void>
}

export interface RedisServerOptions {
  /** Extra `--name value` settings (e.g. cluster-enabled). */
  readonly settings?: Readonly<Record<string, string>>
  /** A config file to run (for sentinel mode); `{port}` and `{dir}` are filled in. */
  readonly configFile?: string
  readonly sentinel?: boolean
}

export async function startRedis(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-redis-'))
  const port = await freePort()
  let child: ChildProcess | undefined
  const args = async () => {
    const settings: Record<string, string> = {
      port: String(port),
      bind: '127.0.0.1',
      'protected-mode': 'yes',
      save: '',
      appendonly: 'no',
      dir,
      logfile: join(dir, 'redis.log'),
      daemonize: 'no',
      ...opts.settings,
    }
    const list = Object.entries(settings).flatMap(([k, v]) => [`--${k}`, v])
    if (opts.configFile === undefined) return list
    const conf = join(dir, 'redis.conf')
    await writeFile(conf, opts.configFile.replaceAll('{port}', String(port)).replaceAll('{dir}', dir))
    return [conf, ...(opts.sentinel ? ['--sentinel'] : []), ...list]
  }
  const start = async () => {
    const c = spawn('redis-server', await args(), { stdio: 'ignore' })
    child = c
    const exited = new Promise<never>((_, reject) =>
      c.once('exit', (code) => reject(new Error(`redis-server exited with ${code}; see ${dir}/redis.log`))),
    )
    exited.catch(() => undefined)
    await Promise.race([waitForPort(port), exited])
  }
  const stop = async () => {
    const c = child
    child = undefined
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    const gone = new Promise((r) => c.once('exit', r))
    c.kill('SIGTERM')
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000)
    await gone
    clearTimeout(timer)
  }
  const server: RedisServer = {
    get pid() {
      return child?.pid
    },
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    start,
    stop,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    cli: async (...a) => (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...a])).stdout,
    close: async () => {
      child?.kill('SIGCONT')
      await stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
  try {
    await start()
  } catch (e) {
    await server.close()
    throw e
  }
  return server
}

/**
 * A master, a replica of it, and one Sentinel watching them as `name`; the Sentinel calls the
 * master down after `downAfterMs` without answers and then promotes the replica.
 */
export async function startRedisSentinel(
  name = 'qtsmtpd',
  downAfterMs = 1000,
): Promise<{ master: RedisServer; replica: RedisServer; sentinel: RedisServer; close(): Promise<void> }> {
  const servers: RedisServer[] = []
  const close = async () => {
    await Promise.all(servers.map((s) => s.close()))
  }
  try {
    const master = await startRedis()
    servers.push(master)
    const replica = await startRedis({ configFile: `replicaof 127.0.0.1 ${master.port}\n` })
    servers.push(replica)
    const sentinel = await startRedis({
      sentinel: true,
      configFile: [
        `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
        `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
        `sentinel failover-timeout ${name} 10000`,
        'sentinel resolve-hostnames no',
        '',
      ].join('\n'),
      settings: { save: '' },
    })
    servers.push(sentinel)
    return { master, replica, sentinel, close }
  } catch (e) {
    await close()
    throw e
  }
}

/** Three masters, no replicas, every slot assigned; waits until the cluster says ok. */
export async function startRedisCluster(): Promise<{ nodes: RedisServer[]; close(): Promise<void> }> {
  const nodes: RedisServer[] = []
  const close = async () => {
    await Promise.all(nodes.map((n) => n.close()))
  }
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await startRedis({
          settings: {
            'cluster-enabled': 'yes',
            'cluster-port': String(await freePort()),
            'cluster-config-file': 'nodes.conf',
            'cluster-node-timeout': '2000',
          },
        }),
      )
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`)
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'])
    for (let i = 0; i < 100; i++) {
      const infos = await Promise.all(nodes.map((n) => n.cli('cluster', 'info')))
      if (infos.every((info) => /cluster_state:ok/.test(info))) return { nodes, close }
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error('redis cluster did not reach cluster_state:ok in 10 s')
  } catch (e) {
    await close()
    throw e
  }
}
