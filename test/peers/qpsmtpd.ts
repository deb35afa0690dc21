/**
 * A private qpsmtpd 0.94 (Debian's qpsmtpd-prefork) on an ephemeral 127.0.0.1 port, with the
 * config files a test writes and DNS from a given server (Net::DNS reads RES_NAMESERVERS and
 * RES_OPTIONS, so its plugins ask the test's unbound). It runs as the qpsmtpd user, as the
 * package does; its files are made readable to it. Needs root; always call stop().
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitForPort } from './free-port.ts'

export interface Qpsmtpd {
  readonly port: number
  /** What it wrote to stderr (its log at the configured loglevel). */
  output(): string
  stop(): Promise<void>
}

/** Why qpsmtpd cannot run here, or undefined when it can. */
export function qpsmtpdUnavailable(): string | undefined {
  if (!existsSync('/usr/bin/qpsmtpd-prefork')) return 'qpsmtpd (Debian) is not installed'
  if (process.getuid?.() !== 0) return 'qpsmtpd-prefork must start as root (it switches to the qpsmtpd user)'
  try {
    execFileSync('perl', ['-MNet::IP', '-e', '1'], { stdio: 'ignore' })
  } catch {
    return 'Net::IP (libnet-ip-perl), which qpsmtpd needs, is not installed'
  }
  return undefined
}

/**
 * qpsmtpd-prefork run through `do`: its `#!perl -T` line makes a direct `perl -T` run refuse the
 * command line's arguments as tainted (setpriority), as bench/contenders.ts found.
 */
const PREFORK = `$0 = '/usr/bin/qpsmtpd-prefork';\ndo '/usr/bin/qpsmtpd-prefork';\ndie $@ if $@;\n`

/** A queue plugin for qpsmtpd that accepts and drops (qpsmtpd has no queue/discard). */
const DISCARD = `sub hook_queue { return (OK, "Queued (discarded)") }\n`

export async function startQpsmtpd(opts: {
  /** Config files by name (`plugins`, `dnsbl_zones`, ...); `discard` names the dropping queue plugin. */
  readonly config: Readonly<Record<string, string>>
  readonly dns: { readonly address: string; readonly port: number }
}): Promise<Qpsmtpd> {
  const dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-qpsmtpd-'))
  const config = join(dir, 'config')
  const plugins = join(dir, 'plugins')
  const spool = join(dir, 'spool')
  for (const d of [config, plugins, spool]) mkdirSync(d)
  writeFileSync(join(plugins, 'discard'), DISCARD)
  writeFileSync(join(dir, 'prefork.pl'), PREFORK)
  writeFileSync(join(config, 'plugin_dirs'), `${plugins}\n/usr/share/qpsmtpd/plugins\n`)
  writeFileSync(join(config, 'spool_dir'), `${spool}\n`)
  writeFileSync(join(config, 'loglevel'), '6\n')
  for (const [name, text] of Object.entries(opts.config)) writeFileSync(join(config, name), text)
  execFileSync('chown', ['-R', 'qpsmtpd:', dir])
  chmodSync(dir, 0o755)
  chmodSync(spool, 0o700)
  const port = await freePort()
  let out = ''
  const child: ChildProcess = spawn(
    'perl',
    [
      join(dir, 'prefork.pl'),
      '--listen-address',
      '127.0.0.1',
      '--port',
      String(port),
      '--max-from-ip',
      '0',
      '--children',
      '4',
      '--idle-children',
      '2',
      '--renice-parent',
      '0',
      '--user',
      'qpsmtpd',
    ],
    {
      cwd: dir,
      env: {
        ...process.env,
        QPSMTPD_CONFIG: config,
        RES_NAMESERVERS: opts.dns.address,
        RES_OPTIONS: `port:${opts.dns.port} retry:1 retrans:2`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  )
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    const pid = child.pid
    if (pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-pid, 'SIGTERM')
      } catch {}
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())])
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {}
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await Promise.race([
      waitForPort(port, 30_000),
      exited.then(() => {
        throw new Error('qpsmtpd-prefork exited')
      }),
    ])
  } catch (e) {
    await stop()
    throw new Error(`qpsmtpd did not start: ${(e as Error).message}\n${out}`)
  }
  return { port, output: () => out, stop }
}
