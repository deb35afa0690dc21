/**
 * Helpers for end-to-end tests of the qtsmtpd command: a temporary qpsmtpd-layout config
 * directory with a file-writing test queue, and the CLI as a child process whose log lines
 * can be awaited (free loopback ports: test/peers/free-port.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { makeCertificate } from '../../src/testing/certs.ts'

export const repo = resolve(import.meta.dirname, '../..')
export const bin = join(repo, 'bin/qtsmtpd')

export interface TestConfig {
  readonly dir: string
  readonly config: string
  /** Where the test queue writes one file per message (named by queue id). */
  readonly out: string
  messages(): string[]
  write(file: string, text: string): void
  remove(): void
}

const queuePlugin = `
import { writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { definePlugin } from ${JSON.stringify(join(repo, 'src/host/define-plugin.ts'))}
import { opt } from ${JSON.stringify(join(repo, 'src/host/options.ts'))}
import { accept } from ${JSON.stringify(join(repo, 'src/host/verdict.ts'))}
export default definePlugin({
  name: 'test-file-queue',
  options: { dir: opt.string({ positional: 0 }) },
  setup({ options }) {
    return { hooks: { queue: async (ctx, msg) => {
      const data = Buffer.concat(await msg.stream().toArray())
      const tmp = join(options.dir, '.' + ctx.transaction.id)
      writeFileSync(tmp, data)
      renameSync(tmp, join(options.dir, ctx.transaction.id))
      return accept({ text: 'Queued as ' + ctx.transaction.id })
    } } }
  },
})
`

/** A config dir: `plugins` lines are given; the test queue is appended. */
export function makeConfig(plugins: readonly string[], files: Readonly<Record<string, string>> = {}): TestConfig {
  const dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-cli-'))
  const config = join(dir, 'config')
  const out = join(dir, 'out')
  const pluginDir = join(dir, 'plugins')
  // Readable by everyone and out/ and spool/ writable, so the server may run as nobody.
  chmodSync(dir, 0o755)
  for (const d of [config, out, pluginDir, join(dir, 'spool')]) mkdirSync(d, { recursive: true })
  for (const d of [out, join(dir, 'spool')]) chmodSync(d, 0o777)
  writeFileSync(join(pluginDir, 'test-file-queue.ts'), queuePlugin)
  const all: Record<string, string> = {
    me: 'mx.test',
    rcpthosts: 'example.com',
    loglevel: '6',
    spool_dir: join(dir, 'spool'),
    plugin_dirs: pluginDir,
    plugins: [...plugins, `test-file-queue ${out}`].join('\n'),
    ...files,
  }
  for (const [k, v] of Object.entries(all)) writeFileSync(join(config, k), `${v}\n`)
  return {
    dir,
    config,
    out,
    messages: () =>
      readdirSync(out)
        .filter((f) => !f.startsWith('.'))
        .map((f) => readFileSync(join(out, f), 'utf8')),
    write: (file, text) => writeFileSync(join(config, file), text),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** A self-signed certificate for `name` where the tls plugin looks by default (config/ssl/). */
export async function installCertificate(cfg: TestConfig, name = 'mx.test'): Promise<void> {
  const cert = await makeCertificate(name, cfg.dir)
  mkdirSync(join(cfg.config, 'ssl'), { recursive: true })
  copyFileSync(cert.certFile, join(cfg.config, 'ssl/qpsmtpd-server.crt'))
  copyFileSync(cert.keyFile, join(cfg.config, 'ssl/qpsmtpd-server.key'))
}

export interface Cli {
  readonly child: ChildProcess
  readonly lines: string[]
  /** Resolves with the first log line (past or future) matching re. */
  waitFor(re: RegExp, timeoutMs?: number, from?: number): Promise<RegExpMatchArray>
  exited(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  kill(signal?: NodeJS.Signals): void
}

/** Runs bin/qtsmtpd with this Node, or `opts.command` (an installed qtsmtpd) as it is. */
export function startCli(
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; command?: string } = {},
): Cli {
  const [file, argv] = opts.command === undefined ? [process.execPath, [bin, ...args]] : [opts.command, args]
  const child = spawn(file, argv, {
    cwd: opts.cwd ?? repo,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  let waiters: (() => void)[] = []
  let buf = ''
  const onData = (chunk: Buffer) => {
    buf += chunk.toString('utf8')
    const parts = buf.split('\n')
    buf = parts.pop() ?? ''
    lines.push(...parts)
    if (process.env.QTSMTPD_TEST_ECHO) for (const l of parts) process.stderr.write(`  | ${l}\n`)
    const w = waiters
    waiters = []
    for (const f of w) f()
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  )
  child.once('exit', () => {
    const w = waiters
    waiters = []
    for (const f of w) f()
  })
  return {
    child,
    lines,
    async waitFor(re, timeoutMs = 15_000, from = 0) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        for (let i = from; i < lines.length; i++) {
          const m = (lines[i] as string).match(re)
          if (m) return m
        }
        const left = deadline - Date.now()
        if (left <= 0 || child.exitCode !== null || child.signalCode !== null)
          throw new Error(`no log line ${re} (exit ${child.exitCode}); log:\n${lines.join('\n')}`)
        await new Promise<void>((r) => {
          const t = setTimeout(r, left)
          waiters.push(() => {
            clearTimeout(t)
            r()
          })
        })
      }
    },
    exited(timeoutMs = 15_000) {
      return Promise.race([
        exit,
        new Promise<never>((_, rej) =>
          setTimeout(
            () => rej(new Error(`did not exit within ${timeoutMs} ms; log:\n${lines.join('\n')}`)),
            timeoutMs,
          ).unref(),
        ),
      ])
    },
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    },
  }
}

/** Kills a process id if it is still there (cleanup of workers). */
export function killPid(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal)
  } catch {}
}
