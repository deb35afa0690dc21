/**
 * A private spamass-milter (Debian's spamass-milter 0.4) for tests, on an ephemeral loopback
 * port, asking a private spamd (test/peers/spamd.ts: local rules only, no network) through
 * spamc. `args` are spamass-milter's own flags (`-r 5` rejects at score 5, `-b trap@...`
 * redirects spam). stop()/start() take the milter away and bring it back. Always call close().
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { freePort, waitForPort } from './free-port.ts'
import { type Spamd, startSpamd } from './spamd.ts'

export interface SpamassMilter {
  /** `inet:PORT@127.0.0.1`. */
  readonly socket: string
  readonly spamd: Spamd
  start(): Promise<void>
  stop(): Promise<void>
  close(): Promise<void>
}

export async function startSpamassMilter(args: readonly string[] = []): Promise<SpamassMilter> {
  const spamd = await startSpamd()
  const port = await freePort()
  const socket = `inet:${port}@127.0.0.1`
  let child: ChildProcess | undefined
  const start = async () => {
    let stderr = ''
    const c = spawn('spamass-milter', ['-p', socket, ...args, '--', '-d', '127.0.0.1', '-p', String(spamd.port)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    c.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    child = c
    const exited = new Promise<never>((_, reject) =>
      c.once('exit', (code) => reject(new Error(`spamass-milter exited with ${code}: ${stderr}`))),
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
  const milter: SpamassMilter = {
    socket,
    spamd,
    start,
    stop,
    close: async () => {
      await stop()
      await spamd.close()
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
