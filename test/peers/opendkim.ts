/**
 * A private OpenDKIM (Debian's opendkim) milter for tests: a key made by opendkim-genkey in a
 * temp dir, the milter socket on an ephemeral loopback port, signing for one domain (clients on
 * 127.0.0.1 are internal hosts, so their mail is signed) and verifying the rest. `record` is the
 * key's DNS TXT value, for a loopback DNS server. stop()/start() take it away and bring it back
 * on the same port, pause()/resume() (SIGSTOP/SIGCONT) make it accept and never answer.
 * Always call close().
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, waitForPort } from './free-port.ts'

export interface OpenDkim {
  /** `inet:PORT@127.0.0.1`, or `unix:/path` when the settings give a `local:` Socket. */
  readonly socket: string
  readonly port: number
  readonly dir: string
  /** The public key's TXT record value (`v=DKIM1; h=sha256; k=rsa; p=...`). */
  readonly record: string
  /** `<selector>._domainkey.<domain>`. */
  readonly recordName: string
  start(): Promise<void>
  stop(): Promise<void>
  pause(): void
  resume(): void
  close(): Promise<void>
}

export interface OpenDkimOptions {
  readonly domain: string
  readonly selector: string
  /** More opendkim.conf settings (`Canonicalization relaxed/relaxed`). */
  readonly settings?: Readonly<Record<string, string>>
}

export async function startOpenDkim(opts: OpenDkimOptions): Promise<OpenDkim> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-opendkim-'))
  await promisify(execFile)('opendkim-genkey', ['-D', dir, '-d', opts.domain, '-s', opts.selector])
  const txt = await readFile(join(dir, `${opts.selector}.txt`), 'utf8')
  const record = [...txt.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('')
  const port = await freePort()
  const settings: Record<string, string> = {
    Syslog: 'no',
    Background: 'no',
    Mode: 'sv',
    Domain: opts.domain,
    Selector: opts.selector,
    KeyFile: join(dir, `${opts.selector}.private`),
    // The key lies under /tmp, which others may write: OpenDKIM refuses that unless told.
    RequireSafeKeys: 'false',
    Socket: `inet:${port}@127.0.0.1`,
    PidFile: join(dir, 'opendkim.pid'),
    InternalHosts: '127.0.0.1',
    ...opts.settings,
  }
  const conf = join(dir, 'opendkim.conf')
  await writeFile(
    conf,
    `${Object.entries(settings)
      .map(([k, v]) => `${k} ${v}`)
      .join('\n')}\n`,
  )
  let child: ChildProcess | undefined
  const start = async () => {
    await rm(settings.PidFile as string, { force: true })
    let stderr = ''
    const c = spawn('opendkim', ['-f', '-x', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
    c.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    child = c
    const exited = new Promise<never>((_, reject) =>
      c.once('exit', (code) => reject(new Error(`opendkim exited with ${code}: ${stderr}`))),
    )
    exited.catch(() => undefined)
    const unix = /^(?:local|unix):(.+)$/.exec(settings.Socket as string)?.[1]
    await Promise.race([unix === undefined ? waitForPort(port) : waitForPath(unix), exited])
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
  const dkim: OpenDkim = {
    socket: (settings.Socket as string).replace(/^local:/, 'unix:'),
    port,
    dir,
    record,
    recordName: `${opts.selector}._domainkey.${opts.domain}`,
    start,
    stop,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    close: async () => {
      await stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
  try {
    await start()
  } catch (e) {
    await dkim.close()
    throw e
  }
  return dkim
}

async function waitForPath(path: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`no socket at ${path} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
