/**
 * Installs test/peers/fake-scanner under vendor program names in a temp dir (aveclient, bdc,
 * antivir, kavscanner, uvscan), and a stand-in Sophie daemon on a Unix socket there: the
 * vendors' scanners are not in Debian. `calls()` lists the command lines the scanners were run
 * with, `last()` the message file the last one read.
 */
import { chmod, mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const SCRIPT = fileURLToPath(new URL('./fake-scanner', import.meta.url))

export interface FakeScanners {
  readonly dir: string
  /** The path of the stand-in installed as `name`. */
  path(name: string): string
  calls(): Promise<string[]>
  last(): Promise<Buffer>
  close(): Promise<void>
}

export async function installFakeScanners(): Promise<FakeScanners> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-scanners-'))
  for (const name of ['aveclient', 'bdc', 'antivir', 'kavscanner', 'uvscan']) await symlink(SCRIPT, join(dir, name))
  return {
    dir,
    path: (name) => join(dir, name),
    calls: async () =>
      (await readFile(join(dir, 'calls.log'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== ''),
    last: () => readFile(join(dir, 'last.eml')),
    close: () => rm(dir, { recursive: true, force: true }),
  }
}

export interface FakeSophie {
  readonly socket: string
  /** Paths it was sent, with the file's mode when it read it. */
  readonly asked: { path: string; mode: number }[]
  /** `answer` decides the reply to a message's bytes (default: Sophie's `1:NAME` for EICAR, else `0`). */
  answer: (message: Buffer) => string | undefined
  close(): Promise<void>
}

/** Sophie's protocol: a file name and a newline in; `1:NAME`, `0` or `-1:error` and a newline out. */
export async function startFakeSophie(dir: string): Promise<FakeSophie> {
  const socket = join(dir, 'sophie.sock')
  const asked: { path: string; mode: number }[] = []
  const state: FakeSophie = {
    socket,
    asked,
    answer: (m) => (m.includes('EICAR-STANDARD-ANTIVIRUS-TEST-FILE') ? '1:EICAR-Test-File\n' : '0\n'),
    close: () =>
      new Promise<void>((r) => {
        for (const c of open) c.destroy()
        server.close(() => r())
      }),
  }
  const open = new Set<import('node:net').Socket>()
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    let line = ''
    open.add(s)
    s.on('close', () => open.delete(s))
    s.on('error', () => {})
    s.on('data', async (d) => {
      line += d.toString('latin1')
      const nl = line.indexOf('\n')
      if (nl < 0) return
      const path = line.slice(0, nl)
      const { stat } = await import('node:fs/promises')
      const mode = (await stat(path).catch(() => ({ mode: -1 }))).mode & 0o777
      asked.push({ path, mode })
      const reply = state.answer(await readFile(path).catch(() => Buffer.alloc(0)))
      if (reply !== undefined) s.end(reply)
    })
  })
  await new Promise<void>((r) => server.listen(socket, r))
  await chmod(socket, 0o600)
  return state
}
