/**
 * Starts the recording aiosmtpd sink (aiosmtpd-sink.py) on 127.0.0.1 and an ephemeral port,
 * for outbound tests. Needs Debian python3-aiosmtpd (run with /usr/bin/python3 so a
 * pyenv or venv python without the package is not picked up).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface SinkMessage {
  readonly peer: [string, number]
  readonly helo: string
  readonly tls: boolean
  readonly auth: boolean
  readonly mail_from: string
  readonly mail_options: string[]
  readonly rcpt_tos: string[]
  readonly rcpt_options: string[]
  readonly data: Buffer
}

export interface Sink {
  readonly port: number
  readonly dir: string
  messages(): Promise<SinkMessage[]>
  stop(): Promise<void>
}

export interface SinkOptions {
  readonly cert?: { certFile: string; keyFile: string }
  readonly requireTls?: boolean
  readonly auth?: string
  readonly port?: number
}

export async function startSink(opts: SinkOptions = {}): Promise<Sink> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-sink-'))
  const args = [join(import.meta.dirname, 'aiosmtpd-sink.py'), '--dir', dir, '--port', String(opts.port ?? 0)]
  if (opts.cert) args.push('--cert', opts.cert.certFile, '--key', opts.cert.keyFile)
  if (opts.requireTls) args.push('--require-tls')
  if (opts.auth) args.push('--auth', opts.auth)
  const child = spawn('/usr/bin/python3', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d) => {
    stderr += String(d)
  })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`aiosmtpd sink did not start: ${stderr}`)), 15_000)
    child.stdout?.on('data', (d) => {
      out += String(d)
      const m = /READY (\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`aiosmtpd sink exited (${code}): ${stderr}`))
    })
  })
  return {
    port,
    dir,
    async messages() {
      const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort()
      const out: SinkMessage[] = []
      for (const f of files) {
        const m = JSON.parse(await readFile(join(dir, f), 'utf8'))
        out.push({ ...m, data: Buffer.from(m.data, 'base64') })
      }
      return out
    },
    async stop() {
      await stopChild(child)
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise<void>((r) => child.once('exit', () => r()))
  child.kill('SIGTERM')
  const t = setTimeout(() => child.kill('SIGKILL'), 3000)
  await gone
  clearTimeout(t)
}
