/**
 * Several nodes: two qtsmtpd processes (bin/qtsmtpd, each with its own configuration directory,
 * spool and queue) behind a real HAProxy that sends PROXY v2, sharing one real redis-server as
 * their store. What one node learns, the other knows: a triplet greylisted through node A is
 * accepted when retried through node B after black_timeout; a rate limit reached through A
 * holds on B; karma earned on A is seen on B; the open connections hosts_allow counts are the
 * site's, and those of a node that was killed are forgotten once their leases run out.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { SmtpTestClient } from '../../src/testing/index.ts'
import { freePort } from '../peers/free-port.ts'
import { type Haproxy, startHaproxy } from '../peers/haproxy.ts'
import { type RedisServer, startRedis } from '../peers/redis.ts'
import { type Cli, makeConfig, repo, startCli, type TestConfig } from './harness.ts'

/** Takes three points of karma from clients that say HELO naughty.* (as dnsbl or spamassassin would). */
const judgePlugin = `
import { adjustKarma } from ${JSON.stringify(join(repo, 'src/host/conventions.ts'))}
import { definePlugin } from ${JSON.stringify(join(repo, 'src/host/define-plugin.ts'))}
import { pass } from ${JSON.stringify(join(repo, 'src/host/verdict.ts'))}
const judge = (ctx, host) => {
  if (host.startsWith('naughty.')) adjustKarma(ctx, -3)
  return pass()
}
export default definePlugin({ name: 'test-judge', options: {}, setup: () => ({ hooks: { helo: judge, ehlo: judge } }) })
`

const BLACK_SECONDS = 4
const LEASE_SECONDS = 10

describe('two nodes behind HAProxy sharing one Redis', { timeout: 120_000 }, () => {
  let redis: RedisServer
  let haproxy: Haproxy
  const nodes: { cfg: TestConfig; cli: Cli; port: number }[] = []

  before(async () => {
    redis = await startRedis()
    for (const name of ['a', 'b']) {
      const cfg = makeConfig(
        [
          `hosts_allow max_conn_ip 2 lease_seconds ${LEASE_SECONDS}`,
          'karma reject 1',
          'test-judge',
          'limit',
          `greylisting black_timeout ${BLACK_SECONDS} grey_timeout 600`,
          'rcpt_ok',
        ],
        {
          'smtpd.conf': `store redis://127.0.0.1:${redis.port} prefix=site:`,
          proxy_trusted: '127.0.0.1',
          limits: 'messages ip 3/1h',
          me: `node-${name}.mx.test`,
        },
      )
      writeFileSync(join(cfg.dir, 'plugins', 'test-judge.ts'), judgePlugin)
      const port = await freePort()
      const cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`])
      nodes.push({ cfg, cli, port })
    }
    for (const n of nodes) await n.cli.waitFor(/ready: pid \d+/, 30_000)
    haproxy = await startHaproxy({ a: [nodes[0]!.port], b: [nodes[1]!.port] })
  })
  after(async () => {
    for (const n of nodes) n.cli.kill('SIGKILL')
    await haproxy?.close()
    await redis?.close()
    for (const n of nodes) n.cfg.remove()
  })

  /** A client at `from` reaching node `node` through HAProxy; the greeting read. */
  const client = async (node: 'a' | 'b', from: string): Promise<{ c: SmtpTestClient; greeting: string }> => {
    const c = await SmtpTestClient.connect(haproxy.ports[node]!, '127.0.0.1', { localAddress: from })
    return { c, greeting: (await c.reply(15_000)).raw }
  }
  const mailFrom = async (node: 'a' | 'b', from: string, sender: string, helo = 'client.test') => {
    const { c, greeting } = await client(node, from)
    assert.match(greeting, new RegExp(`^220 node-${node}\\.mx\\.test `))
    await c.send(`EHLO ${helo}`, 250)
    const reply = (await c.send(`MAIL FROM:<${sender}>`, /^/, 15_000))!.raw
    return { c, reply }
  }

  it('a triplet greylisted through node A is accepted when retried through node B after black_timeout', async () => {
    const first = Date.now()
    const a = await mailFrom('a', '127.0.0.21', 'gl@sender.test')
    assert.equal(a.reply, '450 4.7.1 This mail is temporarily denied\r\n')
    await a.c.quit()
    const soon = await mailFrom('b', '127.0.0.21', 'gl@sender.test')
    // Node B knows the first attempt: a retry before black_timeout is still deferred.
    if (Date.now() - first < BLACK_SECONDS * 1000 - 500)
      assert.equal(soon.reply, '450 4.7.1 This mail is temporarily denied\r\n')
    await soon.c.quit()
    await sleep(Math.max(0, first + BLACK_SECONDS * 1000 + 500 - Date.now()))
    const b = await mailFrom('b', '127.0.0.21', 'gl@sender.test')
    assert.match(b.reply, /^250 /)
    await b.c.send('RCPT TO:<u@example.com>', 250)
    await b.c.send('DATA', 354)
    await b.c.send('Subject: retried\r\n\r\nthrough node B\r\n.', /^250 /, 15_000)
    await b.c.quit()
    const stored = nodes[1]!.cfg.messages()
    assert.equal(stored.length, 1)
    assert.match(stored[0]!, /^Received: from client\.test \(unknown \[127\.0\.0\.21\]\)/, 'PROXY v2 gave B the client')
  })

  it('a rate limit reached through node A holds on node B', async () => {
    for (let i = 0; i < 3; i++) {
      const a = await mailFrom('a', '127.0.0.22', 'bulk@sender.test')
      assert.equal(a.reply, '450 4.7.1 This mail is temporarily denied\r\n', 'counted, then greylisted')
      await a.c.quit()
    }
    const b = await mailFrom('b', '127.0.0.22', 'bulk@sender.test')
    assert.equal(b.reply, '450 4.7.1 Too much mail from 127.0.0.22, slow down\r\n')
    await b.c.quit()
  })

  it('karma earned on node A is seen on node B', async () => {
    const { c, greeting } = await client('a', '127.0.0.23')
    assert.match(greeting, /^220 /)
    await c.send('EHLO naughty.client.test', 250)
    await c.quit()
    await nodes[0]!.cli.waitFor(/summary ip=127\.0\.0\.23 .*penalty box/, 15_000)
    const b = await client('b', '127.0.0.23')
    assert.equal(b.greeting, '554 5.7.1 You were naughty. You cannot connect for 1.00 more days.\r\n')
    await b.c.closed()
  })

  it("open connections count across nodes; a killed node's are forgotten when their leases run out", async () => {
    const held = [await client('a', '127.0.0.24'), await client('a', '127.0.0.24')]
    for (const h of held) assert.match(h.greeting, /^220 /)
    const refused = await client('b', '127.0.0.24')
    assert.equal(refused.greeting, '421 4.7.0 Sorry, too many connections from 127.0.0.24, try again later\r\n')
    // Node A dies with both connections open: nobody gives their leases back.
    nodes[0]!.cli.kill('SIGKILL')
    await nodes[0]!.cli.exited()
    for (const h of held) h.c.destroy()
    const still = await client('b', '127.0.0.24')
    assert.match(still.greeting, /^421 4\.7\.0 /, 'the dead node still holds its leases')
    await sleep(LEASE_SECONDS * 1000 + 500)
    const healed = await client('b', '127.0.0.24')
    assert.match(healed.greeting, /^220 /, 'the count healed by itself')
    await healed.c.quit()
  })
})
