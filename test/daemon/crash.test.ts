/**
 * An error nobody catches (here a plugin that throws from a timer, outside any hook) leaves a
 * process in an unknown state: it is logged, the process drains (open sessions may finish,
 * nothing new is accepted) and exits with 70, so that the primary starts a fresh worker, or
 * systemd (Restart=on-failure) a fresh server. It used to log and carry on.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { freePort } from '../peers/free-port.ts'
import { killPid, makeConfig, repo, startCli, type TestConfig } from './harness.ts'

const cleanup: (() => void)[] = []
after(() => {
  for (const f of cleanup.reverse()) f()
})

/** A plugin with a bug: EHLO boom.test throws from a timer, where no hook can catch it. */
const boomPlugin = `
import { definePlugin } from ${JSON.stringify(join(repo, 'src/host/define-plugin.ts'))}
import { pass } from ${JSON.stringify(join(repo, 'src/host/verdict.ts'))}
export default definePlugin({
  name: 'boom',
  options: {},
  setup() {
    return { hooks: { ehlo: async (ctx, host) => {
      if (host === 'boom.test') setImmediate(() => { throw new Error('boom from a timer') })
      return pass()
    } } }
  },
})
`

function configWithBoom(): TestConfig {
  const cfg = makeConfig(['boom', 'rcpt_ok'])
  writeFileSync(join(cfg.dir, 'plugins', 'boom.ts'), boomPlugin)
  cleanup.push(cfg.remove)
  return cfg
}

async function deliver(c: SmtpTestClient, subject: string): Promise<void> {
  await c.send('MAIL FROM:<a@client.test>', 250)
  await c.send('RCPT TO:<u@example.com>', 250)
  await c.send('DATA', 354)
  await c.send(`Subject: ${subject}\r\n\r\nhello\r\n.`, 250)
}

describe('an uncaught exception', { timeout: 60_000 }, () => {
  test('single process: logged, open sessions finish, then exit 70', async () => {
    const cfg = configWithBoom()
    const port = await freePort()
    const cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`, '--drain', '10'])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/ready: pid \d+/)
    const busy = await SmtpTestClient.connect(port)
    cleanup.push(() => busy.destroy())
    await busy.expect(220)
    await busy.send('EHLO busy.test', 250)

    const c = await SmtpTestClient.connect(port)
    cleanup.push(() => c.destroy())
    await c.expect(220)
    await c.send('EHLO boom.test', 250)
    await cli.waitFor(/crit uncaught exception: Error: boom from a timer/)
    await cli.waitFor(/draining \(uncaught exception\): not accepting/)
    // Nothing new is accepted; the open session still delivers.
    await assert.rejects(SmtpTestClient.connect(port))
    await deliver(busy, 'after the crash')
    await busy.send('QUIT', 221)
    await c.send('QUIT', 221)
    assert.deepEqual(await cli.exited(), { code: 70, signal: null })
    assert.equal(cfg.messages().length, 1)
  })

  test('--workers: the worker drains and exits 70, and a fresh one replaces it', async () => {
    const cfg = configWithBoom()
    const port = await freePort()
    const cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`, '--workers', '2', '--drain', '10'])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/all 2 workers ready/)
    for (const l of cli.lines) {
      const m = /worker \d ready \(pid (\d+)\)/.exec(l)
      if (m) cleanup.push(() => killPid(Number(m[1])))
    }
    const c = await SmtpTestClient.connect(port)
    cleanup.push(() => c.destroy())
    await c.expect(220)
    const mark = cli.lines.length
    await c.send('EHLO boom.test', 250)
    const [, id, pid] = await cli.waitFor(/worker (\d) \(pid (\d+)\): uncaught exception: Error: boom from a timer/)
    await c.send('QUIT', 221)
    await cli.waitFor(
      new RegExp(`worker ${id} \\(pid ${pid}\\) exited \\(code 70\\).*replacing in \\d+ ms`),
      15_000,
      mark,
    )
    const [, fresh] = await cli.waitFor(new RegExp(`worker ${id} ready \\(pid (\\d+)\\)`), 15_000, mark)
    cleanup.push(() => killPid(Number(fresh)))
    // The server goes on answering, whichever worker takes the connection.
    for (let i = 0; i < 4; i++) {
      const d = await SmtpTestClient.connect(port)
      await d.expect(220)
      await d.send('EHLO client.test', 250)
      await deliver(d, `after ${i}`)
      await d.send('QUIT', 221)
      d.destroy()
    }
    assert.equal(cfg.messages().length, 4)
    cli.kill('SIGTERM')
    assert.equal((await cli.exited()).code, 0)
  })
})
