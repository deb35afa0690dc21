/**
 * A private HAProxy (Debian haproxy) on loopback for tests: TCP mode, one frontend per entry,
 * each sending to its backend servers with the PROXY protocol v2, as a site puts it in front of
 * several qtsmtpd nodes. Always call `close()`.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitForPort } from './free-port.ts'

export interface Haproxy {
  /** The frontend port of each name given. */
  readonly ports: Readonly<Record<string, number>>
  log(): string
  close(): Promise<void>
}

/** `frontends`: name → backend ports (round robin over them, each with send-proxy-v2). */
export async function startHaproxy(frontends: Readonly<Record<string, readonly number[]>>): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-haproxy-'))
  const ports: Record<string, number> = {}
  const sections: string[] = []
  for (const [name, servers] of Object.entries(frontends)) {
    ports[name] = await freePort()
    sections.push(
      `frontend f_${name}`,
      `  bind 127.0.0.1:${ports[name]}`,
      `  default_backend b_${name}`,
      `backend b_${name}`,
      '  balance roundrobin',
      ...servers.map((p, i) => `  server s${i} 127.0.0.1:${p} send-proxy-v2`),
    )
  }
  const cfg = [
    'global',
    '  maxconn 200',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    ...sections,
    '',
  ].join('\n')
  writeFileSync(join(dir, 'haproxy.cfg'), cfg)
  let out = ''
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()))
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r))
      child.kill('SIGKILL')
      await gone
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (const port of Object.values(ports)) await waitForPort(port)
  } catch (e) {
    await close()
    throw new Error(`haproxy did not start: ${(e as Error).message}\n${out}`)
  }
  return { ports, log: () => out, close }
}
