/**
 * Health for load balancers, against a real `qtsmtpd --workers 2` and Debian's HAProxy with
 * agent-check: `/healthz` and the agent port say ready (weight from the free capacity),
 * overloaded (drain) once the open connections of both workers reach admin_overload, ready
 * again when they close, and draining (maint) after SIGTERM while a session finishes; HAProxy's
 * own stats show the states the agent set (UP, DRAIN, MAINT).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { killPid, startCli } from '../daemon/harness.ts'
import { freePort } from '../peers/free-port.ts'
import { adminConfig, get } from './support.ts'

const cleanup: (() => void)[] = []
after(() => {
  for (const f of cleanup.reverse()) f()
})

/** One line from a TCP port that speaks first (the agent). */
function readLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    let text = ''
    s.on('data', (c: Buffer) => (text += c.toString()))
    s.on('end', () => resolve(text))
    s.on('error', reject)
  })
}

/** A command on HAProxy's stats socket. */
function haproxyCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socket)
    let text = ''
    s.on('data', (c: Buffer) => (text += c.toString()))
    s.on('end', () => resolve(text))
    s.on('error', reject)
    s.end(`${command}\n`)
  })
}

/** The server's row of `show stat`: status and weight. */
async function serverState(socket: string): Promise<{ status: string; weight: string }> {
  const csv = await haproxyCommand(socket, 'show stat').catch(() => '')
  const [header = '', ...rows] = csv.trim().split('\n')
  const names = header.replace(/^# /, '').split(',')
  const row = rows.map((r) => r.split(',')).find((r) => r[0] === 'b_smtp' && r[1] === 'mx1')
  if (row === undefined) return { status: 'none', weight: '' }
  return { status: row[names.indexOf('status')] ?? '', weight: row[names.indexOf('weight')] ?? '' }
}

async function eventually<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  let last: T | undefined
  for (;;) {
    last = await read()
    if (ok(last)) return last
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(last)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('health for load balancers', { timeout: 90_000 }, () => {
  test('/healthz and the agent: ready, overloaded, ready, draining; HAProxy follows the agent', async () => {
    // 2 workers × --max-connections 10 = 20; admin_overload 20% = 4 open connections.
    const cfg = adminConfig({ 'smtpd.conf': 'admin_overload 20\nadmin_scrape_timeout 1s' })
    cleanup.push(cfg.remove)
    const [port, admin, agent, front] = [await freePort(), await freePort(), await freePort(), await freePort()]
    const cli = startCli([
      ...['--config', cfg.config, '--listen', `127.0.0.1:${port}`, '--workers', '2', '--max-connections', '10'],
      ...['--admin', `127.0.0.1:${admin}`, '--agent-check', `127.0.0.1:${agent}`, '--drain', '20'],
    ])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/all 2 workers ready/)
    for (const l of cli.lines) {
      const m = /worker \d ready \(pid (\d+)\)/.exec(l)
      if (m) cleanup.push(() => killPid(Number(m[1])))
    }

    const dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-agent-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    const stats = join(dir, 'admin.sock')
    writeFileSync(
      join(dir, 'haproxy.cfg'),
      `
global
  maxconn 100
  stats socket ${stats} level admin
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend f_smtp
  bind 127.0.0.1:${front}
  default_backend b_smtp
backend b_smtp
  server mx1 127.0.0.1:${port} check inter 1s agent-check agent-addr 127.0.0.1 agent-port ${agent} agent-inter 200ms weight 100
`,
    )
    const haproxy = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] })
    let haproxyLog = ''
    haproxy.stderr.on('data', (d: Buffer) => (haproxyLog += d.toString()))
    cleanup.push(() => haproxy.kill('SIGKILL'))

    const health = async () => {
      const r = await get(admin, '/healthz')
      return `${r.status} ${r.body.trim()}`
    }
    assert.equal(await health(), '200 ready')
    assert.equal(await readLine(agent), 'ready up 100%\n')
    await eventually(
      'HAProxy sees the server up',
      () => serverState(stats),
      (s) => s.status === 'UP' && s.weight === '100',
    )

    // Four idle sessions, on whichever worker the kernel picks: the sum reaches 20% of 20.
    const clients: SmtpTestClient[] = []
    for (let i = 0; i < 4; i++) {
      const c = await SmtpTestClient.connect(port)
      await c.expect(220)
      clients.push(c)
      if (i === 2) assert.equal(await readLine(agent), 'ready up 85%\n')
    }
    assert.equal(await health(), '503 overloaded')
    assert.equal(await readLine(agent), 'drain\n')
    await eventually(
      'HAProxy drains the server',
      () => serverState(stats),
      (s) => s.status === 'DRAIN (agent)',
      15_000,
    ).catch((e: Error) => assert.fail(`${e.message}\n${haproxyLog}`))

    for (const c of clients.splice(1)) {
      await c.send('QUIT', 221)
      c.destroy()
    }
    await eventually('ready again', health, (h) => h === '200 ready')
    await eventually(
      'HAProxy takes it back',
      () => serverState(stats),
      (s) => s.status === 'UP' && s.weight === '95',
    )

    // SIGTERM with one session open: draining while it may finish.
    cli.kill('SIGTERM')
    await cli.waitFor(/SIGTERM: draining 2 workers/)
    assert.equal(await health(), '503 draining')
    assert.equal(await readLine(agent), 'maint\n')
    await eventually(
      'HAProxy puts it in maintenance',
      () => serverState(stats),
      (s) => s.status.startsWith('MAINT'),
    )
    const [last] = clients
    await last?.send('QUIT', 221)
    last?.destroy()
    assert.equal((await cli.exited(30_000)).code, 0)
  })
})
