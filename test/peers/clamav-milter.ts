/**
 * A private clamav-milter (Debian's clamav-milter) for tests, on an ephemeral loopback port,
 * scanning through a private clamd (test/peers/clamd.ts: an EICAR database of our own, no
 * download). `onInfected` is clamav-milter's OnInfected (Debian's default is Quarantine); it adds
 * X-Virus-Scanned and X-Virus-Status fields (AddHeader Replace) and defers when clamd fails
 * (OnFail Defer). stop()/start() take the milter away and bring it back. Always call close().
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Clamd, startClamd } from './clamd.ts'
import { freePort, waitForPort } from './free-port.ts'

export interface ClamavMilter {
  /** `inet:PORT@127.0.0.1`. */
  readonly socket: string
  readonly clamd: Clamd
  start(): Promise<void>
  stop(): Promise<void>
  log(): Promise<string>
  close(): Promise<void>
}

export async function startClamavMilter(
  opts: { onInfected?: 'Reject' | 'Quarantine' | 'Blackhole' | 'Accept' } = {},
): Promise<ClamavMilter> {
  const clamd = await startClamd()
  const port = await freePort()
  const conf = join(clamd.dir, 'clamav-milter.conf')
  const logFile = join(clamd.dir, 'clamav-milter.log')
  const settings: Record<string, string> = {
    MilterSocket: `inet:${port}@127.0.0.1`,
    ClamdSocket: `unix:${clamd.socket}`,
    Foreground: 'yes',
    PidFile: join(clamd.dir, 'clamav-milter.pid'),
    OnClean: 'Accept',
    OnInfected: opts.onInfected ?? 'Quarantine',
    OnFail: 'Defer',
    AddHeader: 'Replace',
    LogFile: logFile,
    LogVerbose: 'yes',
    LogInfected: 'Full',
    TemporaryDirectory: clamd.dir,
    ReadTimeout: '30',
  }
  await writeFile(
    conf,
    `${Object.entries(settings)
      .map(([k, v]) => `${k} ${v}`)
      .join('\n')}\n`,
  )
  let child: ChildProcess | undefined
  const start = async () => {
    const c = spawn('clamav-milter', ['-c', conf], { stdio: 'ignore' })
    child = c
    const exited = new Promise<never>((_, reject) =>
      c.once('exit', (code) => reject(new Error(`clamav-milter exited with ${code}; see ${logFile}`))),
    )
    exited.catch(() => undefined)
    await Promise.race([waitForPort(port, 30_000), exited])
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
  const milter: ClamavMilter = {
    socket: `inet:${port}@127.0.0.1`,
    clamd,
    start,
    stop,
    log: () => readFile(logFile, 'utf8').catch(() => ''),
    close: async () => {
      await stop()
      await clamd.close()
    },
  }
  try {
    await start()
  } catch (e) {
    await milter.close()
    throw e
  }
  return milter
}
