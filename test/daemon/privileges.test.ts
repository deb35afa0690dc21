/**
 * --user/--group: the listeners are bound as root (a port below 1024), then the process
 * becomes nobody before serving (checked in /proc/<pid>/status); with --workers the workers
 * drop and the primary keeps root to bind for replacements. systemd socket activation
 * (LISTEN_FDS, LISTEN_FDNAMES) with the real systemd-socket-activate. Needs root.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { after, describe, test } from 'node:test'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { freePort } from '../peers/free-port.ts'
import { bin, killPid, makeConfig, startCli } from './harness.ts'

const isRoot = process.getuid?.() === 0
const cleanup: (() => void)[] = []
after(() => {
  for (const f of cleanup.reverse()) f()
})

function ids(pid: number): { uid: number[]; gid: number[] } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string) =>
    (new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)?.[1] ?? '').split(/\s+/).map(Number)
  return { uid: field('Uid'), gid: field('Gid') }
}

/** A free port below 1024 on 127.0.0.1, so that binding it needs root. */
async function privilegedPort(): Promise<number> {
  for (let port = 925; port < 1000; port++) {
    const s = createServer()
    const ok = await new Promise<boolean>((r) => {
      s.once('error', () => r(false))
      s.listen(port, '127.0.0.1', () => r(true))
    })
    if (ok) {
      await new Promise<void>((r) => s.close(() => r()))
      return port
    }
  }
  throw new Error('no free port below 1000')
}

async function smtpOk(port: number): Promise<void> {
  const c = await SmtpTestClient.connect(port)
  try {
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<a@client.test>', 250)
    await c.send('RCPT TO:<u@example.com>', 250)
    await c.send('DATA', 354)
    await c.send('Subject: t\r\n\r\nhi\r\n.', 250)
    await c.send('QUIT', 221)
  } finally {
    c.destroy()
  }
}

describe('privileges', { skip: !isRoot && 'needs root', timeout: 60_000 }, () => {
  test('binds a port below 1024 as root, then serves as nobody', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const port = await privilegedPort()
    const pidFile = `${cfg.dir}/qtsmtpd.pid`
    const cli = startCli([
      '--config',
      cfg.config,
      '--listen',
      `127.0.0.1:${port}`,
      '--user',
      'nobody',
      '--pid-file',
      pidFile,
    ])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/running as nobody:nogroup \(uid 65534, gid 65534\)/)
    await cli.waitFor(/ready: pid \d+/)
    const pid = Number(readFileSync(pidFile, 'utf8').trim())
    assert.equal(pid, cli.child.pid)
    assert.deepEqual(ids(pid), { uid: [65534, 65534, 65534, 65534], gid: [65534, 65534, 65534, 65534] })
    await smtpOk(port)
    assert.equal(cfg.messages().length, 1)
    cli.kill('SIGTERM')
    assert.equal((await cli.exited()).code, 0)
    // The pid file is removed at exit only when it is writable by the dropped user; it is
    // left in place here (written as root in a root-owned directory), which is harmless.
  })

  test('with --workers, workers run as nobody and the primary keeps root', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const port = await freePort()
    const cli = startCli([
      '--config',
      cfg.config,
      '--listen',
      `127.0.0.1:${port}`,
      '--user',
      'nobody',
      '--workers',
      '2',
    ])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/all 2 workers ready/)
    const pids = cli.lines.flatMap((l) => {
      const m = /worker \d ready \(pid (\d+)\)/.exec(l)
      return m ? [Number(m[1])] : []
    })
    for (const p of pids) cleanup.push(() => killPid(p))
    for (const p of pids) assert.deepEqual(ids(p).uid, [65534, 65534, 65534, 65534])
    assert.equal(ids(cli.child.pid as number).uid[0], 0)
    await smtpOk(port)
    cli.kill('SIGTERM')
    assert.equal((await cli.exited()).code, 0)
  })

  test('an unknown user is exit code 4, before anything is bound', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const cli = startCli(['--config', cfg.config, '--user', 'no-such-user-qt'])
    assert.equal((await cli.exited()).code, 4)
    assert.ok(cli.lines.some((l) => /unknown user "no-such-user-qt"/.test(l)))
  })

  test('systemd socket activation: the inherited socket, its name as the role, then nobody', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const port = await freePort()
    const { spawn } = await import('node:child_process')
    const child = spawn(
      'systemd-socket-activate',
      [
        '-l',
        `127.0.0.1:${port}`,
        '--fdname=submission',
        process.execPath,
        bin,
        '--config',
        cfg.config,
        '--user',
        'nobody',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    cleanup.push(() => child.kill('SIGKILL'))
    let log = ''
    child.stderr.on('data', (d: Buffer) => {
      log += d.toString()
    })
    // systemd-socket-activate starts the command on the first connection.
    let c: SmtpTestClient | undefined
    for (let i = 0; i < 50 && c === undefined; i++) {
      c = await SmtpTestClient.connect(port).catch(() => undefined)
      if (c === undefined) await new Promise((r) => setTimeout(r, 100))
    }
    if (c === undefined) throw new Error('systemd-socket-activate is not listening')
    const client = c
    cleanup.push(() => client.destroy())
    await c.expect(220, 15_000)
    assert.match(log, new RegExp(`ready: pid ${child.pid}, listening on 127\\.0\\.0\\.1:${port}`))
    assert.deepEqual(ids(child.pid as number).uid, [65534, 65534, 65534, 65534])
    await c.send('EHLO client.test', 250)
    // The socket was named "submission": AUTH is required before MAIL.
    await c.send('MAIL FROM:<a@client.test>', /^530 /)
    await c.send('QUIT', 221)
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
  })
})
