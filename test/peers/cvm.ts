/**
 * Debian's cvm (Bruce Guenter's Credential Validation Modules) for tests: `cvm-pwfile` serving a
 * passwd-format file that the test writes, on a Unix socket (`cvm-local:PATH`) and, when asked,
 * on UDP (`cvm-udp:127.0.0.1:PORT`). Passwords in the file are clear text (cvm-pwfile's default
 * comparison). Each user gets the test process's uid and gid, so that cvm-checkpassword can
 * switch to them as root or as an ordinary user. Always call `close()`.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port.ts'

export const CVM_PWFILE = '/usr/bin/cvm-pwfile'
export const CVM_CHECKPASSWORD = '/usr/bin/cvm-checkpassword'

export interface CvmUser {
  readonly name: string
  readonly password: string
}

export interface CvmServer {
  readonly dir: string
  /** The Unix socket cvm-pwfile serves (`cvm-local:` + this is its CVM name). */
  readonly socket: string
  /** The UDP port, when started with `udp`. */
  readonly udpPort: number | undefined
  /** Starts the module again after stop(), on the same socket and port. */
  start(): Promise<void>
  stop(): Promise<void>
  close(): Promise<void>
}

export async function startCvm(users: readonly CvmUser[], opts: { udp?: boolean } = {}): Promise<CvmServer> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-cvm-'))
  const pwfile = join(dir, 'passwd')
  const uid = process.getuid?.() ?? 0
  const gid = process.getgid?.() ?? 0
  const lines = users.map((u) => `${u.name}:${u.password}:${uid}:${gid}:${u.name}:${dir}:/bin/false`)
  await writeFile(pwfile, `${lines.join('\n')}\n`)
  const socket = join(dir, 'cvm.sock')
  const udpPort = opts.udp ? await freePort() : undefined
  let children: ChildProcess[] = []
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', CVM_PWFILE_PATH: pwfile }
  const run = (mode: string) => {
    const child = spawn(CVM_PWFILE, [mode], { env, stdio: 'ignore' })
    child.on('error', () => {})
    return child
  }
  const start = async () => {
    await rm(socket, { force: true })
    children = [run(`cvm-local:${socket}`), ...(udpPort === undefined ? [] : [run(`cvm-udp:127.0.0.1:${udpPort}`)])]
    const deadline = Date.now() + 10_000
    for (;;) {
      const ready = await access(socket).then(
        () => true,
        () => false,
      )
      if (ready) break
      if (Date.now() > deadline) throw new Error(`${CVM_PWFILE} did not create ${socket}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve()
            c.once('exit', () => resolve())
            c.kill('SIGKILL')
          }),
      ),
    )
    children = []
    await rm(socket, { force: true })
  }
  await start()
  return {
    dir,
    socket,
    udpPort,
    start,
    stop,
    close: async () => {
      await stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
