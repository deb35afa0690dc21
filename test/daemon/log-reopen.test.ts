/**
 * logrotate's way, against the real qtsmtpd process: the log file is renamed while mail flows,
 * SIGUSR1 goes to the pid, later lines go to a new file of the old name, and no line is lost
 * (every session's summary and every accepted message is in one of the two files, once).
 * With --workers, the primary passes the signal to every worker.
 */
import assert from 'node:assert/strict'
import { mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { freePort } from '../peers/free-port.ts'
import { type Cli, killPid, makeConfig, startCli } from './harness.ts'

const cleanup: (() => void)[] = []
after(() => {
  for (const f of cleanup.reverse()) f()
})

async function deliver(port: number): Promise<void> {
  const c = await SmtpTestClient.connect(port)
  try {
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<a@client.test>', 250)
    await c.send('RCPT TO:<u@example.com>', 250)
    await c.send('DATA', 354)
    await c.send('Subject: t\r\n\r\nhello\r\n.', 250)
    await c.send('QUIT', 221)
  } finally {
    c.destroy()
  }
}

/** Sends `total` messages one after another; calls `midway` after `at` of them, while they go on. */
async function mailFlow(port: number, total: number, at: number, midway: () => Promise<void>): Promise<void> {
  let sent = 0
  const flow = (async () => {
    for (; sent < total; sent++) await deliver(port)
  })()
  while (sent < at) await new Promise((r) => setTimeout(r, 10))
  await midway()
  await flow
}

function setUp() {
  // The log path is relative: it is taken from the directory holding config/.
  const cfg = makeConfig(['rcpt_ok'], {
    logging: ['logging/file loglevel LOGINFO log/qtsmtpd.log', 'logging/warn LOGNOTICE'].join('\n'),
  })
  cleanup.push(cfg.remove)
  mkdirSync(join(cfg.dir, 'log'))
  return { cfg, log: join(cfg.dir, 'log', 'qtsmtpd.log') }
}

const linesOf = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean)

function assertNothingLost(files: readonly string[], messages: number, ids: readonly string[]): void {
  const all = files.flatMap(linesOf)
  assert.equal(all.filter((l) => / summary ip=127\.0\.0\.1 /.test(l)).length, messages)
  const accepted = all.flatMap((l) => / accepted id=(\S+) /.exec(l)?.[1] ?? [])
  assert.deepEqual([...accepted].sort(), [...ids].sort())
}

describe('log files reopen on SIGUSR1', { timeout: 120_000 }, () => {
  test('one process: the renamed file keeps what came before, the new file what came after', async () => {
    const { cfg, log } = setUp()
    const port = await freePort()
    const cli: Cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/ready: pid \d+/)
    let mark = 0
    await mailFlow(port, 30, 10, async () => {
      renameSync(log, `${log}.1`)
      mark = cli.lines.length
      cli.child.kill('SIGUSR1')
      await cli.waitFor(/log files reopened/, 15_000, mark)
    })
    cli.kill('SIGTERM')
    assert.deepEqual(await cli.exited(), { code: 0, signal: null })

    const before = linesOf(`${log}.1`)
    const now = linesOf(log)
    assert.ok(before.filter((l) => / accepted id=/.test(l)).length >= 10)
    assert.match(now[0] ?? '', /\]: log files reopened$/)
    assert.ok(now.filter((l) => / accepted id=/.test(l)).length >= 1, now.join('\n'))
    assert.ok(!before.some((l) => l.includes('log files reopened')))
    assertNothingLost([`${log}.1`, log], 30, queueIds(cfg.out))
  })

  test('--workers: the primary passes SIGUSR1 to every worker', async () => {
    const { cfg, log } = setUp()
    const port = await freePort()
    const cli: Cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`, '--workers', '2'])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/all 2 workers ready/)
    for (const l of cli.lines) {
      const pid = /worker \d ready \(pid (\d+)\)/.exec(l)?.[1]
      if (pid !== undefined) cleanup.push(() => killPid(Number(pid)))
    }
    await mailFlow(port, 20, 6, async () => {
      renameSync(log, `${log}.1`)
      const mark = cli.lines.length
      cli.child.kill('SIGUSR1')
      await cli.waitFor(/worker 1 \(pid \d+\): log files reopened/, 15_000, mark)
      await cli.waitFor(/worker 2 \(pid \d+\): log files reopened/, 15_000, mark)
    })
    cli.kill('SIGTERM')
    assert.deepEqual(await cli.exited(), { code: 0, signal: null })
    const now = linesOf(log)
    assert.equal(now.filter((l) => /: worker \d \(pid \d+\): log files reopened$/.test(l)).length, 2)
    assertNothingLost([`${log}.1`, log], 20, queueIds(cfg.out))
  })
})

const queueIds = (dir: string) => readdirSync(dir).filter((f) => !f.startsWith('.'))
