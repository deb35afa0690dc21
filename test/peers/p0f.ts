/**
 * A private p0f 3 (Debian's `p0f`) for tests: it sniffs the loopback interface, through a BPF
 * filter for one TCP port (the test server's, so other tests' traffic on `lo` is not its
 * business), and answers on an API socket in a temp dir. Sniffing needs root (CAP_NET_RAW), as
 * the tests and CI run. `stop()`/`start()` take it away and bring it back on the same socket,
 * `pause()`/`resume()` (SIGSTOP/SIGCONT) make it accept and never answer.
 * Always call `close()`, also when a test fails.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface P0fDaemon {
  /** The API socket (`p0f -s`). */
  readonly socket: string
  readonly dir: string
  start(): Promise<void>
  /** Ends it (SIGTERM; SIGKILL after 5 s) and waits until it is gone. */
  stop(): Promise<void>
  pause(): void
  resume(): void
  /** What p0f printed (its start-up lines and every fingerprint). */
  output(): Promise<string>
  close(): Promise<void>
}

/** Resolves true once something accepts connections on the socket. */
function listening(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path: socket })
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

/**
 * Starts p0f on `lo` for TCP traffic to and from `port`, its API on `socket` (default: in a new
 * temp dir, which close() removes), so a server configured with the path may start first.
 */
export async function startP0f(opts: { readonly port: number; readonly socket?: string }): Promise<P0fDaemon> {
  if (process.getuid?.() !== 0)
    throw new Error('p0f needs root to sniff the loopback interface (run the tests as root)')
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-p0f-'))
  const socket = opts.socket ?? join(dir, 'p0f.sock')
  const log = join(dir, 'p0f.log')
  let child: ChildProcess | undefined

  const start = async () => {
    await rm(socket, { force: true })
    const c = spawn('p0f', ['-i', 'lo', '-s', socket, '-o', log, `tcp port ${opts.port}`], {
      stdio: ['ignore', 'ignore', 'ignore'],
    })
    // A test process that dies without close() must not leave the sniffer behind.
    const reap = () => {
      try {
        process.kill(c.pid as number, 'SIGKILL')
      } catch {}
    }
    process.once('exit', reap)
    c.once('exit', () => process.off('exit', reap))
    child = c
    let exited = false
    c.once('exit', () => {
      exited = true
    })
    const deadline = Date.now() + 15_000
    while (!(await listening(socket))) {
      if (exited) throw new Error(`p0f exited at start (code ${c.exitCode})`)
      if (Date.now() > deadline) throw new Error('p0f did not open its API socket within 15 s')
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const stop = async () => {
    const c = child
    child = undefined
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    const gone = new Promise((r) => c.once('exit', r))
    c.kill('SIGCONT')
    c.kill('SIGTERM')
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000)
    await gone
    clearTimeout(timer)
  }
  const daemon: P0fDaemon = {
    socket,
    dir,
    start,
    stop,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    output: () => readFile(log, 'utf8').catch(() => ''),
    close: async () => {
      await stop()
      await rm(socket, { force: true })
      await rm(dir, { recursive: true, force: true })
    },
  }
  try {
    await start()
  } catch (e) {
    await daemon.close()
    throw e
  }
  return daemon
}
