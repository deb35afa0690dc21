/**
 * Private rspamd instances for tests (Debian rspamd 3.4): one normal worker on an ephemeral
 * loopback port (no controller; with `milter`, a proxy worker in milter mode on another port), Debian's rules (its /etc/rspamd/common.conf) with our
 * own LOCAL_CONFDIR, DBDIR and RUNDIR in a temp dir, and nothing that reaches the network: DNS
 * goes to 127.0.0.1:9 (nothing answers), and the modules that look names up or fetch maps from
 * maps.rspamd.com are disabled. `localFiles` adds local.d files (settings.conf, actions.conf,
 * milter_headers.conf).
 *
 * rspamd compiles its TLD list and regexps at the first start (20 s on a loaded machine); the
 * compiled Hyperscan files go to one cache directory per user in the temp dir, keyed by content,
 * so later starts take about a second. `pause()`/`resume()` (SIGSTOP/SIGCONT on its process
 * group) make it accept and never answer. Always call `close()`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { freePort, waitForPort } from './free-port.ts'

/** Modules that query DNS, fetch maps over HTTP, or need Redis. */
const OFFLINE_DISABLED = [
  'arc',
  'asn',
  'bimi',
  'dcc',
  'dkim',
  'dmarc',
  'emails',
  'fuzzy_check',
  'greylist',
  'hfilter',
  'history_redis',
  'mid',
  'mime_types',
  'multimap',
  'mx_check',
  'neural',
  'once_received',
  'phishing',
  'ratelimit',
  'rbl',
  'replies',
  'reputation',
  'rspamd_update',
  'spf',
  'surbl',
  'url_redirector',
]

export interface Rspamd {
  readonly port: number
  readonly url: string
  /** With `milter`: the proxy worker's milter socket, `inet:PORT@127.0.0.1`. */
  readonly milterSocket: string | undefined
  readonly dir: string
  log(): Promise<string>
  /** A graceful stop (SIGTERM): rspamd finishes the scans it has, then exits. */
  stop(): Promise<void>
  /** A crash (SIGKILL to every process): scans under way get no answer. */
  kill(): Promise<void>
  start(): Promise<void>
  /** SIGSTOP to every rspamd process: connections are accepted and never answered. */
  pause(): void
  resume(): void
  close(): Promise<void>
}

export interface RspamdOptions {
  /** Files of local.d: `{ 'settings.conf': '...' }`. */
  readonly localFiles?: Readonly<Record<string, string>>
  /** Also a proxy worker in milter mode (`milter = yes`, scanning itself) on its own port. */
  readonly milter?: boolean
}

export async function startRspamd(opts: RspamdOptions = {}): Promise<Rspamd> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-rspamd-'))
  const local = join(dir, 'local.d')
  const run = join(dir, 'run')
  const cache = join(tmpdir(), `qtsmtpd-rspamd-hs-cache-${userInfo().uid}`)
  await mkdir(local)
  await mkdir(run)
  await mkdir(cache, { recursive: true })
  const port = await freePort()
  const milterPort = opts.milter ? await freePort() : undefined
  for (const m of OFFLINE_DISABLED) await writeFile(join(local, `${m}.conf`), 'enabled = false;\n')
  for (const [name, text] of Object.entries(opts.localFiles ?? {})) await writeFile(join(local, name), text)
  const conf = join(dir, 'rspamd.conf')
  await writeFile(
    conf,
    `.include "$CONFDIR/common.conf"
options {
  pidfile = "$RUNDIR/rspamd.pid";
  hs_cache_dir = "${cache}";
  .include "$CONFDIR/options.inc"
  dns { nameserver = ["127.0.0.1:9"]; timeout = 0.2s; retransmits = 0; }
}
logging { type = "file"; filename = "${join(dir, 'rspamd.log')}"; level = "info"; }
worker "normal" {
  bind_socket = "127.0.0.1:${port}";
  .include "$CONFDIR/worker-normal.inc"
  count = 1;
}
${
  milterPort === undefined
    ? ''
    : `worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:${milterPort}";
  milter = yes;
  timeout = 120s;
  upstream "local" { default = yes; self_scan = yes; }
  count = 1;
}
`
}`,
  )
  // rspamd drops privileges to _rspamd when started as root: it must write its own directories.
  const asRoot = process.getuid?.() === 0
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', '_rspamd'], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', '_rspamd'], { encoding: 'utf8' }).trim())
    for (const d of [dir, run, cache]) await chown(d, uid, gid)
  }
  const args = [
    '-f',
    '-c',
    conf,
    ...(asRoot ? ['-u', '_rspamd', '-g', '_rspamd'] : []),
    `--var=LOCAL_CONFDIR=${dir}`,
    `--var=RUNDIR=${run}`,
    `--var=DBDIR=${run}`,
    `--var=LOGDIR=${dir}`,
  ]
  let child: ChildProcess | undefined
  const start = async () => {
    // Own process group: stop() reaches the workers too.
    const c = spawn('rspamd', args, { stdio: 'ignore', detached: true })
    // A test process that dies without close() must not leave the daemon behind.
    const reap = () => {
      try {
        process.kill(-(c.pid as number), 'SIGKILL')
      } catch {}
    }
    process.once('exit', reap)
    c.once('exit', () => process.off('exit', reap))
    child = c
    const exited = new Promise<never>((_, reject) =>
      c.once('exit', (code) => reject(new Error(`rspamd exited with ${code}; see ${join(dir, 'rspamd.log')}`))),
    )
    exited.catch(() => undefined)
    await Promise.race([waitForPort(port, 120_000), exited])
    if (milterPort !== undefined) await Promise.race([waitForPort(milterPort, 120_000), exited])
  }
  const group = (signal: NodeJS.Signals) => {
    const pid = child?.pid
    if (pid === undefined) return
    try {
      process.kill(-pid, signal)
    } catch {}
  }
  const stop = async () => {
    const c = child
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) {
      child = undefined
      return
    }
    const pid = c.pid as number
    const gone = new Promise((r) => c.once('exit', r))
    group('SIGCONT')
    child = undefined
    process.kill(-pid, 'SIGTERM')
    const timer = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {}
    }, 5000)
    await gone
    clearTimeout(timer)
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {}
  }
  const kill = async () => {
    const c = child
    child = undefined
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    const gone = new Promise((r) => c.once('exit', r))
    process.kill(-(c.pid as number), 'SIGKILL')
    await gone
  }
  const rspamd: Rspamd = {
    port,
    url: `http://127.0.0.1:${port}`,
    milterSocket: milterPort === undefined ? undefined : `inet:${milterPort}@127.0.0.1`,
    dir,
    log: () => readFile(join(dir, 'rspamd.log'), 'utf8').catch(() => ''),
    start,
    stop,
    kill,
    pause: () => group('SIGSTOP'),
    resume: () => group('SIGCONT'),
    close: async () => {
      await stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
  try {
    await start()
  } catch (e) {
    await rspamd.close()
    throw e
  }
  return rspamd
}
