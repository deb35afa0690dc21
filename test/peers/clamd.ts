/**
 * Private clamd instances for tests (Debian clamav-daemon), and ClamAV signature databases that
 * need no download: ClamAV's own databases come from freshclam over the internet, so the tests
 * write a database of their own that knows EICAR, as an MD5 hash line made by `sigtool --md5`
 * (`.hdb`, the whole file) and a body pattern (`.ndb`, anywhere in any file, so EICAR inside a
 * mail is found). clamd listens on a Unix socket in a temp dir and on an ephemeral loopback
 * port; no freshclam runs. `stop()`/`start()` take it away and bring it back on the same
 * socket and port, `pause()`/`resume()` (SIGSTOP/SIGCONT) make it accept and never answer.
 * Reusable by other plugins' tests (clamav-milter points its ClamdSocket at `socket`).
 * Always call `close()`, also when a test fails.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './free-port.ts'

const run = promisify(execFile)

/** The EICAR test file (68 bytes): every scanner reports it, and it harms nothing. */
export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
/** What clamd and clamscan name it with `writeEicarDatabase`'s `.ndb` line. */
export const EICAR_NAME = 'Test.EICAR.NDB.UNOFFICIAL'

/**
 * Writes `test.hdb` (from `sigtool --md5` of the EICAR file) and `test.ndb` into `dir`: a
 * database clamd and clamscan load with no download.
 */
export async function writeEicarDatabase(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  const sample = join(dir, 'eicar.sample')
  await writeFile(sample, EICAR)
  const { stdout } = await run('sigtool', ['--md5', sample])
  await rm(sample)
  // sigtool prints hash:size:file name; the name becomes the signature's name.
  const hdb = stdout.trim().replace(/:[^:]*$/, ':Test.EICAR.HDB')
  await writeFile(join(dir, 'test.hdb'), `${hdb}\n`)
  await writeFile(join(dir, 'test.ndb'), `Test.EICAR.NDB:0:*:${Buffer.from(EICAR).toString('hex')}\n`)
}

export interface Clamd {
  /** The Unix socket (clamd's LocalSocket). */
  readonly socket: string
  /** The TCP port on 127.0.0.1. */
  readonly port: number
  /** The signature database directory. */
  readonly dbDir: string
  readonly dir: string
  /** clamd's pid while it runs. */
  readonly pid: number | undefined
  start(): Promise<void>
  /** Ends it (SIGTERM; SIGKILL after 5 s) and waits until it is gone. */
  stop(): Promise<void>
  /** SIGSTOP: connections are accepted by the kernel and never answered. */
  pause(): void
  resume(): void
  /** clamd's log so far. */
  log(): Promise<string>
  close(): Promise<void>
}

export interface ClamdOptions {
  /** More clamd.conf lines (`StreamMaxLength 64K`). */
  readonly settings?: Readonly<Record<string, string>>
}

/** Asks clamd `zPING`; resolves true on PONG. */
function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path: socket })
    let answer = ''
    const timer = setTimeout(() => s.destroy(), 2000)
    s.on('connect', () => s.write('zPING\0'))
    s.on('data', (d) => {
      answer += d.toString('latin1')
    })
    s.on('close', () => {
      clearTimeout(timer)
      resolve(answer.startsWith('PONG'))
    })
    s.on('error', () => {})
  })
}

export async function startClamd(opts: ClamdOptions = {}): Promise<Clamd> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-clamd-'))
  const dbDir = join(dir, 'db')
  await writeEicarDatabase(dbDir)
  const socket = join(dir, 'clamd.sock')
  const port = await freePort()
  const conf = join(dir, 'clamd.conf')
  const settings: Record<string, string> = {
    Foreground: 'yes',
    DatabaseDirectory: dbDir,
    LocalSocket: socket,
    TCPSocket: String(port),
    TCPAddr: '127.0.0.1',
    LogFile: join(dir, 'clamd.log'),
    // No self-check reloads, one thread pool small enough for a shared test machine.
    SelfCheck: '0',
    MaxThreads: '4',
    ...opts.settings,
  }
  await writeFile(
    conf,
    `${Object.entries(settings)
      .map(([k, v]) => `${k} ${v}`)
      .join('\n')}\n`,
  )
  let child: ChildProcess | undefined

  const start = async () => {
    await rm(socket, { force: true })
    const c = spawn('clamd', ['-c', conf], { stdio: 'ignore' })
    // A test process that dies without close() must not leave the daemon behind.
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
    const deadline = Date.now() + 30_000
    while (!(await ping(socket))) {
      if (exited) throw new Error(`clamd exited at start; see ${join(dir, 'clamd.log')}`)
      if (Date.now() > deadline) throw new Error('clamd did not answer PING within 30 s')
      await new Promise((r) => setTimeout(r, 100))
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
  const clamd: Clamd = {
    socket,
    port,
    dbDir,
    dir,
    get pid() {
      return child?.pid
    },
    start,
    stop,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    log: () => readFile(join(dir, 'clamd.log'), 'utf8').catch(() => ''),
    close: async () => {
      await stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
  try {
    await start()
  } catch (e) {
    await clamd.close()
    throw e
  }
  return clamd
}
