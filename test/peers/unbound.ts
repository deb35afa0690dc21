/**
 * A private unbound (Debian's unbound) answering from zones the test writes, on an ephemeral
 * 127.0.0.1 port, UDP and TCP. The root is a static local zone, so every name outside the test's
 * data is NXDOMAIN and unbound never asks anything outside this machine; no root hints, no
 * validator, no remote control. Runs in the foreground as a child process; always call stop().
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitForPort } from './free-port.ts'

export interface UnboundOptions {
  /** `local-zone` names with their type (`static` answers NXDOMAIN/NODATA with the zone's SOA). */
  readonly zones: Readonly<Record<string, 'static' | 'transparent' | 'refuse' | 'deny'>>
  /** Records in zone-file syntax, one per entry: `a.test. 300 IN A 192.0.2.1`. */
  readonly records: readonly string[]
  /** More `server:` settings, `key: value` each. */
  readonly server?: readonly string[]
  /** More clauses after `server:` (forward-zone, stub-zone), as text. */
  readonly clauses?: string
}

export interface Unbound {
  readonly address: '127.0.0.1'
  readonly port: number
  /** unbound's log ('' before the first line). */
  log(): string
  stop(): Promise<void>
}

export async function startUnbound(opts: UnboundOptions): Promise<Unbound> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-unbound-'))
  const logFile = join(dir, 'unbound.log')
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')
  let child: ChildProcess | undefined
  const stop = async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve))
      child.kill('SIGTERM')
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000).unref())])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const port = await freePort()
    const conf = unboundConf(opts, { port, dir, logFile })
    await writeFile(join(dir, 'unbound.conf'), `${conf}\n`)
    const started = spawn('/usr/sbin/unbound', ['-d', '-c', join(dir, 'unbound.conf')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    child = started
    let stderr = ''
    started.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<never>((_, reject) =>
      started.once('exit', (code) => reject(new Error(`unbound exited with ${code}: ${stderr}`))),
    )
    await Promise.race([waitForPort(port), exited])
    exited.catch(() => undefined)
    return { address: '127.0.0.1', port, log, stop }
  } catch (e) {
    const text = log()
    await stop()
    throw new Error(`unbound did not start: ${(e as Error).message}\n${text}`)
  }
}

/** unbound.conf for a private server on 127.0.0.1:`port` answering only from `opts` (used in a network namespace too). */
export function unboundConf(
  opts: UnboundOptions,
  where: { readonly port: number; readonly dir: string; readonly logFile: string },
): string {
  const { port, dir, logFile } = where
  const quote = (s: string) => `'${s.replaceAll("'", '')}'`
  return [
    'server:',
    '  interface: 127.0.0.1',
    `  port: ${port}`,
    '  do-ip6: no',
    '  do-udp: yes',
    '  do-tcp: yes',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    '  pidfile: ""',
    `  logfile: "${logFile}"`,
    '  use-syslog: no',
    '  verbosity: 1',
    '  num-threads: 1',
    '  access-control: 127.0.0.0/8 allow',
    '  module-config: "iterator"',
    '  qname-minimisation: no',
    '  local-zone: "." static',
    ...Object.entries(opts.zones).map(([name, type]) => `  local-zone: "${name}" ${type}`),
    ...opts.records.map((r) => `  local-data: ${quote(r)}`),
    ...(opts.server ?? []).map((s) => `  ${s}`),
    'remote-control:',
    '  control-enable: no',
    opts.clauses ?? '',
  ].join('\n')
}
