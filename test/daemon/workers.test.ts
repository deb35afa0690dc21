/**
 * The process model end to end: `qtsmtpd --workers 2` as a child process. A worker killed
 * with SIGKILL is replaced and the server keeps answering, and clients connecting as it dies
 * are greeted by another worker (issue 18 F6: they were stranded in the primary); SIGHUP with
 * a broken configuration keeps the running one; SIGTERM drains (a session that finishes in
 * time delivers, an idle one gets 421 4.3.2 at the deadline); a second SIGTERM exits at once.
 */
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { after, describe, test } from 'node:test'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { freePort } from '../peers/free-port.ts'
import { type Cli, killPid, makeConfig, startCli, type TestConfig } from './harness.ts'

const cleanup: (() => void)[] = []
after(() => {
  for (const f of cleanup.reverse()) f()
})

async function startWorkers(
  cfg: TestConfig,
  extra: string[] = [],
): Promise<{ cli: Cli; port: number; pids: number[] }> {
  const port = await freePort()
  const cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`, '--workers', '2', ...extra])
  cleanup.push(() => cli.kill('SIGKILL'))
  await cli.waitFor(/all 2 workers ready/)
  const pids = cli.lines.flatMap((l) => {
    const m = /worker \d ready \(pid (\d+)\)/.exec(l)
    return m ? [Number(m[1])] : []
  })
  for (const pid of pids) cleanup.push(() => killPid(pid))
  return { cli, port, pids }
}

async function deliver(port: number, rcpt = 'u@example.com'): Promise<string> {
  const c = await SmtpTestClient.connect(port)
  try {
    const greeting = await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<a@client.test>', 250)
    await c.send(`RCPT TO:<${rcpt}>`, 250)
    await c.send('DATA', 354)
    await c.send('Subject: t\r\n\r\nhello\r\n.', 250)
    await c.send('QUIT', 221)
    return greeting.text
  } finally {
    c.destroy()
  }
}

describe('--workers', { timeout: 90_000 }, () => {
  test('a killed worker is replaced and the server keeps answering', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const { cli, port, pids } = await startWorkers(cfg)
    assert.equal(pids.length, 2)
    const [victim, survivor] = pids as [number, number]
    assert.notEqual(victim, survivor)
    await deliver(port)

    const mark = cli.lines.length
    process.kill(victim, 'SIGKILL')
    await cli.waitFor(
      new RegExp(`worker \\d \\(pid ${victim}\\) exited \\(signal SIGKILL\\).*replacing in \\d+ ms`),
      10_000,
      mark,
    )
    const [, replacement] = await cli.waitFor(/worker \d ready \(pid (\d+)\)/, 15_000, mark)
    cleanup.push(() => killPid(Number(replacement)))
    assert.notEqual(Number(replacement), victim)

    // Every connection is answered, by the survivor or the replacement.
    for (let i = 0; i < 6; i++) await deliver(port)
    assert.equal(cfg.messages().length, 7)

    cli.kill('SIGTERM')
    assert.deepEqual(await cli.exited(), { code: 0, signal: null })
  })

  test('clients connecting while a worker dies are greeted by another worker, none is left hanging', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const { cli, port, pids } = await startWorkers(cfg)
    const primaryFds = () => readdirSync(`/proc/${cli.child.pid}/fd`).length
    const baseline = primaryFds()
    const [victim] = pids as [number, number]
    // A stopped worker accepts nothing; connections that reach it before it is killed (in the
    // primary's hands or its own) must not be stranded. Three rounds, four clients each.
    let mark = cli.lines.length
    let stopped = victim
    for (let round = 0; round < 3; round++) {
      process.kill(stopped, 'SIGSTOP')
      const clients = await Promise.all(Array.from({ length: 4 }, () => SmtpTestClient.connect(port)))
      cleanup.push(() => {
        for (const c of clients) c.destroy()
      })
      await new Promise((r) => setTimeout(r, 300))
      process.kill(stopped, 'SIGKILL')
      // Each one is greeted (by the other worker) or closed, and none waits for a timeout.
      for (const c of clients) {
        const greeted = await c.expect(220, 10_000).then(
          () => true,
          () => c.isClosed,
        )
        assert.ok(greeted, 'a client was neither greeted nor closed')
        c.destroy()
      }
      const [, replacement] = await cli.waitFor(/worker \d ready \(pid (\d+)\)/, 15_000, mark)
      mark = cli.lines.length
      stopped = Number(replacement)
      cleanup.push(() => killPid(stopped))
    }
    await deliver(port)
    // The primary holds no connection of its own: its descriptors are back where they were.
    let fds = primaryFds()
    for (let i = 0; i < 50 && fds > baseline; i++) {
      await new Promise((r) => setTimeout(r, 100))
      fds = primaryFds()
    }
    assert.equal(fds, baseline)
    cli.kill('SIGTERM')
    assert.equal((await cli.exited()).code, 0)
  })

  test('SIGHUP with a broken configuration keeps serving; a good one is used by new connections', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const { cli, port } = await startWorkers(cfg)
    assert.match(await deliver(port), /^mx\.test /)

    cfg.write('plugins', 'rcpt_ok\nno_such_plugin\n')
    let mark = cli.lines.length
    cli.kill('SIGHUP')
    await cli.waitFor(/worker 1 .*reload refused, keeping the running configuration: .*no_such_plugin/, 15_000, mark)
    await cli.waitFor(/worker 2 .*reload refused, keeping the running configuration/, 15_000, mark)
    for (let i = 0; i < 4; i++) assert.match(await deliver(port), /^mx\.test /)

    cfg.write('plugins', `rcpt_ok\ntest-file-queue ${cfg.out}\n`)
    cfg.write('me', 'mx2.test\n')
    mark = cli.lines.length
    cli.kill('SIGHUP')
    await cli.waitFor(/worker 1 .*configuration reloaded/, 15_000, mark)
    await cli.waitFor(/worker 2 .*configuration reloaded/, 15_000, mark)
    for (let i = 0; i < 4; i++) assert.match(await deliver(port), /^mx2\.test /)
    assert.equal(cfg.messages().length, 9)

    cli.kill('SIGTERM')
    assert.equal((await cli.exited()).code, 0)
  })

  test('after a refused reload, a replacement worker runs the configuration the others run', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const { cli, port, pids } = await startWorkers(cfg)
    cfg.write('me', 'mx2.test\n')
    cfg.write('plugins', 'rcpt_ok\nno_such_plugin\n')
    let mark = cli.lines.length
    cli.kill('SIGHUP')
    await cli.waitFor(/worker 1 .*reload refused/, 15_000, mark)
    await cli.waitFor(/worker 2 .*reload refused/, 15_000, mark)

    mark = cli.lines.length
    process.kill(pids[0] as number, 'SIGKILL')
    const [, replacement] = await cli.waitFor(/worker \d ready \(pid (\d+)\)/, 15_000, mark)
    cleanup.push(() => killPid(Number(replacement)))
    assert.ok(!cli.lines.slice(mark).some((l) => /exited \(code 2\)/.test(l)), cli.lines.slice(mark).join('\n'))
    // Both workers, the replacement too, run the old configuration (me = mx.test).
    for (let i = 0; i < 6; i++) assert.match(await deliver(port), /^mx\.test /)

    // A good configuration is then taken by both.
    cfg.write('plugins', `rcpt_ok\ntest-file-queue ${cfg.out}\n`)
    mark = cli.lines.length
    cli.kill('SIGHUP')
    await cli.waitFor(/worker 1 .*configuration reloaded/, 15_000, mark)
    await cli.waitFor(/worker 2 .*configuration reloaded/, 15_000, mark)
    for (let i = 0; i < 4; i++) assert.match(await deliver(port), /^mx2\.test /)
    cli.kill('SIGTERM')
    assert.equal((await cli.exited()).code, 0)
  })

  test('SIGTERM drains: a session that finishes in time delivers, an idle one gets 421', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const { cli, port } = await startWorkers(cfg, ['--drain', '3'])
    const busy = await SmtpTestClient.connect(port)
    const idle = await SmtpTestClient.connect(port)
    cleanup.push(
      () => busy.destroy(),
      () => idle.destroy(),
    )
    await busy.expect(220)
    await idle.expect(220)
    await busy.send('EHLO busy.test', 250)
    await idle.send('EHLO idle.test', 250)

    const started = Date.now()
    const mark = cli.lines.length
    cli.kill('SIGTERM')
    await cli.waitFor(/worker 1 .*draining \(primary\)/, 5000, mark)
    await cli.waitFor(/worker 2 .*draining \(primary\)/, 5000, mark)
    await new Promise((r) => setTimeout(r, 200))
    // New connections are refused once the listeners are closed.
    await assert.rejects(SmtpTestClient.connect(port))
    // The open session goes on and its message is accepted.
    await busy.send('MAIL FROM:<a@client.test>', 250)
    await busy.send('RCPT TO:<u@example.com>', 250)
    await busy.send('DATA', 354)
    await busy.send('Subject: drain\r\n\r\nfinished in time\r\n.', 250)
    await busy.send('QUIT', 221)
    // The idle one is closed at the deadline.
    const r = await idle.expect(421, 10_000)
    assert.equal(r.raw, '421 4.3.2 Service shutting down; closing connection\r\n')
    // The 421's text says the drain deadline closed it; it must not come before the deadline.
    const waited = Date.now() - started
    assert.ok(waited >= 2500, `421 after ${waited} ms`)
    await idle.closed()
    assert.deepEqual(await cli.exited(), { code: 0, signal: null })
    // The two sessions may be on one worker or on both: add up the workers' stop lines.
    const stops = cli.lines.flatMap((l) => {
      const m = /stopped: (\d+) sessions finished, (\d+) closed with 421/.exec(l)
      return m ? [[Number(m[1]), Number(m[2])] as const] : []
    })
    assert.equal(stops.length, 2)
    assert.deepEqual(
      stops.reduce(([f, c], [a, b]) => [f + a, c + b], [0, 0]),
      [1, 1],
    )
    assert.ok(cli.lines.some((l) => /all workers stopped; exiting/.test(l)))
    assert.equal(cfg.messages().length, 1)
  })

  test('a second SIGTERM exits at once', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const { cli, port } = await startWorkers(cfg, ['--drain', '60'])
    const c = await SmtpTestClient.connect(port)
    cleanup.push(() => c.destroy())
    await c.expect(220)
    cli.kill('SIGTERM')
    await cli.waitFor(/draining \(primary\)/)
    cli.kill('SIGTERM')
    // At once, not after the 60 s drain: the wait is only a hang detector, well below it.
    assert.equal((await cli.exited(30_000)).code, 0)
    await c.closed()
  })

  test('a configuration that cannot load stops the primary with exit code 2', async () => {
    const cfg = makeConfig(['no_such_plugin'])
    cleanup.push(cfg.remove)
    const port = await freePort()
    const cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`, '--workers', '2'])
    cleanup.push(() => cli.kill('SIGKILL'))
    assert.equal((await cli.exited()).code, 2)
    assert.ok(cli.lines.some((l) => /failed to start \(code 2\); stopping/.test(l)))
  })
})
