/**
 * The store belongs to the process: a reload builds a new runtime with new plugin instances, but
 * they get the same store connection (one Redis client, the same one, before and after), and a
 * reload that changes the `store` line keeps the running store and says a restart applies it.
 * Against a private redis-server on loopback.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { SmtpTestClient } from '../../src/testing/index.ts'
import { freePort } from '../peers/free-port.ts'
import { startRedis } from '../peers/redis.ts'
import { makeConfig, repo, startCli } from './harness.ts'

const counterPlugin = `
import { accept, definePlugin } from ${JSON.stringify(join(repo, 'src/index.ts'))}
export default definePlugin({
  name: 'test-counter',
  options: {},
  requires: ['store'],
  setup({ store }) {
    return { hooks: { rcpt: async () => accept({ text: 'recipient number ' + (await store.incr('rcpts')) }) } }
  },
})
`

const cleanup: (() => unknown)[] = []
after(async () => {
  for (const f of cleanup.reverse()) await f()
})

/** The ids of the clients connected to Redis, except the redis-cli asking. */
async function clientIds(cli: (...a: string[]) => Promise<string>): Promise<string[]> {
  const list = await cli('CLIENT', 'LIST')
  return list
    .split('\n')
    .filter((l) => l.includes('id=') && !/cmd=client\|list/.test(l))
    .map((l) => /id=(\d+)/.exec(l)?.[1] ?? '')
}

async function rcpt(port: number): Promise<string> {
  const c = await SmtpTestClient.connect(port)
  try {
    await c.expect(220)
    await c.send('HELO client.test', 250)
    await c.send('MAIL FROM:<s@sender.test>', 250)
    return (await c.send('RCPT TO:<u@example.com>', 250))?.raw ?? ''
  } finally {
    await c.quit()
  }
}

describe('the store across reloads', { timeout: 90_000 }, () => {
  test('a reload keeps the same store connection; a changed store line waits for a restart', async () => {
    const redis = await startRedis()
    cleanup.push(() => redis.close())
    const cfg = makeConfig(['test-counter'], { 'smtpd.conf': `store ${redis.url}` })
    cleanup.push(cfg.remove)
    writeFileSync(join(cfg.dir, 'plugins/test-counter.ts'), counterPlugin)
    const port = await freePort()
    const cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/ready: pid \d+/)

    assert.equal(await rcpt(port), '250 2.1.5 recipient number 1\r\n')
    const before = await clientIds(redis.cli)
    assert.equal(before.length, 1, `one connection to Redis: ${before.join(', ')}`)

    let mark = cli.lines.length
    cli.kill('SIGHUP')
    await cli.waitFor(/configuration reloaded; new connections use it/, 15_000, mark)
    assert.equal(await rcpt(port), '250 2.1.5 recipient number 2\r\n')
    assert.deepEqual(await clientIds(redis.cli), before)

    cfg.write('smtpd.conf', 'store memory\n')
    mark = cli.lines.length
    cli.kill('SIGHUP')
    await cli.waitFor(/configuration reloaded; new connections use it/, 15_000, mark)
    await cli.waitFor(
      new RegExp(
        `store: the setting changed \\(${join(cfg.config, 'smtpd.conf')}:1\\); the running store stays until qtsmtpd is restarted`,
      ),
      15_000,
      mark,
    )
    assert.equal(await rcpt(port), '250 2.1.5 recipient number 3\r\n')
    assert.deepEqual(await clientIds(redis.cli), before)

    cli.kill('SIGTERM')
    assert.equal((await cli.exited()).code, 0)
    assert.deepEqual(await clientIds(redis.cli), [], 'the store is closed at exit')
  })
})
