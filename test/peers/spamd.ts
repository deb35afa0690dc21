/**
 * Private spamd instances for tests (Debian spamd/spamassassin 4): loopback TCP on an ephemeral
 * port and a Unix socket in a temp dir, local tests only (`--local`: no DNS blocklists, no
 * Razor/Pyzor), Bayes and auto-learning off, and a private site config directory (Debian's
 * `.pre` files, which load the rule engine, plus our `local.cf`), so the machine's
 * /etc/spamassassin and ~/.spamassassin are never read or written. Per-user preferences come from
 * `users/<user>/user_prefs` (spamd -x --virtual-config-dir), written with `userPrefs`.
 * `stop()`/`start()` take it away and bring it back; `pause()`/`resume()` (SIGSTOP/SIGCONT on
 * the whole process group) make it accept and never answer. Always call `close()`.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { chmod, copyFile, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitForPort } from './free-port.ts'

export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'

export interface Spamd {
  readonly port: number
  readonly socket: string
  readonly dir: string
  /** The spamd parent's pid while it runs (its children are its process tree). */
  readonly pid: number | undefined
  /** Writes `user_prefs` for one spamd user (what the plugin sends as `User:`). */
  userPrefs(user: string, prefs: string): Promise<void>
  start(): Promise<void>
  stop(): Promise<void>
  pause(): void
  resume(): void
  log(): Promise<string>
  close(): Promise<void>
}

const LOCAL_CF = `# qtsmtpd tests: deterministic, offline
use_bayes 0
bayes_auto_learn 0
dns_available no
skip_rbl_checks 1
report_safe 0
`

export async function startSpamd(extraConfig = ''): Promise<Spamd> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-spamd-'))
  const site = join(dir, 'site')
  const users = join(dir, 'users')
  await mkdir(site)
  await mkdir(users)
  for (const f of await readdir('/etc/spamassassin'))
    if (f.endsWith('.pre')) await copyFile(join('/etc/spamassassin', f), join(site, f))
  await writeFile(join(site, 'local.cf'), LOCAL_CF + extraConfig)
  // spamd's children run as nobody and read the per-user files.
  await chmod(dir, 0o755)
  const port = await freePort()
  const socket = join(dir, 'spamd.sock')
  const logFile = join(dir, 'spamd.log')
  const root = process.getuid?.() === 0
  let child: ChildProcess | undefined

  const start = async () => {
    await rm(socket, { force: true })
    const args = [
      '--local',
      '--nouser-config',
      `--virtual-config-dir=${users}/%u`,
      `--listen=127.0.0.1:${port}`,
      `--listen=${socket}`,
      '--allowed-ips=127.0.0.1',
      `--siteconfigpath=${site}`,
      '--max-children=2',
      '--min-spare=1',
      // stderr is unbuffered and shared by the forked children: every result line arrives.
      '--syslog=stderr',
      ...(root ? ['--username=nobody', `--socketowner=root`, '--socketmode=0600'] : []),
    ]
    // Its own process group, so pause() stops the forked children too.
    const log = await open(logFile, 'a')
    const c = spawn('spamd', args, { stdio: ['ignore', 'ignore', log.fd], detached: true })
    // A test process that dies without close() must not leave the daemon behind.
    const reap = () => {
      try {
        process.kill(-(c.pid as number), 'SIGKILL')
      } catch {}
    }
    process.once('exit', reap)
    c.once('exit', () => process.off('exit', reap))
    await log.close()
    child = c
    const exited = new Promise<never>((_, reject) =>
      c.once('exit', (code) => reject(new Error(`spamd exited with ${code}; see ${logFile}`))),
    )
    exited.catch(() => undefined)
    await Promise.race([waitForPort(port, 60_000), exited])
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
    const gone = new Promise((r) => c.once('exit', r))
    group('SIGCONT')
    group('SIGTERM')
    const timer = setTimeout(() => group('SIGKILL'), 5000)
    await gone
    clearTimeout(timer)
    child = undefined
  }
  const spamd: Spamd = {
    port,
    socket,
    dir,
    get pid() {
      return child?.pid
    },
    userPrefs: async (user, prefs) => {
      await mkdir(join(users, user), { recursive: true, mode: 0o755 })
      await writeFile(join(users, user, 'user_prefs'), prefs, { mode: 0o644 })
    },
    start,
    stop,
    pause: () => group('SIGSTOP'),
    resume: () => group('SIGCONT'),
    log: () => readFile(logFile, 'utf8').catch(() => ''),
    close: async () => {
      await stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
  try {
    await start()
  } catch (e) {
    await spamd.close()
    throw e
  }
  return spamd
}
