/**
 * `/metrics` of a real `qtsmtpd --workers 2 --admin`: Prometheus' own `promtool check metrics`
 * accepts the text, and the counters of both workers add up as a test delivers mail, has a
 * recipient refused and a hook time out; a killed worker's counts stay in the sums. The same
 * for a single process.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { killPid, startCli } from '../daemon/harness.ts'
import { freePort } from '../peers/free-port.ts'
import { adminConfig, assertPromtoolAccepts, get, mixedSession, mixedSessionBytes, sample } from './support.ts'

const cleanup: (() => void)[] = []
after(() => {
  for (const f of cleanup.reverse()) f()
})

async function start(workers: string[]) {
  const cfg = adminConfig()
  cleanup.push(cfg.remove)
  const [port, admin] = [await freePort(), await freePort()]
  const cli = startCli([
    '--config',
    cfg.config,
    '--listen',
    `127.0.0.1:${port}`,
    '--admin',
    `127.0.0.1:${admin}`,
    ...workers,
  ])
  cleanup.push(() => cli.kill('SIGKILL'))
  await cli.waitFor(workers.length > 0 ? /all 2 workers ready/ : /ready: pid \d+/)
  const pids = cli.lines.flatMap((l) => {
    const m = /worker \d ready \(pid (\d+)\)/.exec(l)
    return m ? [Number(m[1])] : []
  })
  for (const pid of pids) cleanup.push(() => killPid(pid))
  const scrape = async () => {
    const r = await get(admin, '/metrics')
    assert.equal(r.status, 200)
    assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
    return r.body
  }
  return { cfg, cli, port, pids, scrape }
}

describe('/metrics', { timeout: 90_000 }, () => {
  for (const workers of [['--workers', '2'], []]) {
    const mode = workers.length > 0 ? '--workers 2' : 'one process'
    test(`${mode}: promtool accepts it, and the counters move with mail, a refused recipient and a timed-out hook`, async () => {
      const { cfg, cli, port, pids, scrape } = await start(workers)
      const before = await scrape()
      await assertPromtoolAccepts(before)
      // Declared from the start, at 0: a rate() over them works before the first client.
      assert.equal(sample(before, 'qtsmtpd_messages_accepted_total'), 0)
      assert.match(before, /^qtsmtpd_replies_total\{listener="smtp:\d+",phase="rcpt",class="5xx"\} 0$/m)

      const sessions = 6
      for (let i = 0; i < sessions; i++) await mixedSession(port)
      assert.equal(cfg.messages().length, sessions)
      const text = await scrape()
      await assertPromtoolAccepts(text)
      assert.equal(sample(text, 'qtsmtpd_connections_total'), sessions)
      assert.equal(sample(text, 'qtsmtpd_messages_accepted_total'), sessions)
      assert.equal(sample(text, 'qtsmtpd_replies_total', { phase: 'rcpt', class: '5xx' }), sessions)
      assert.equal(sample(text, 'qtsmtpd_replies_total', { phase: 'rcpt', class: '4xx' }), sessions)
      assert.equal(sample(text, 'qtsmtpd_replies_total', { phase: 'rcpt', class: '2xx' }), sessions)
      assert.equal(sample(text, 'qtsmtpd_replies_total', { phase: 'data', class: '3xx' }), sessions)
      assert.equal(sample(text, 'qtsmtpd_replies_total', { phase: 'connect', class: '2xx' }), sessions)
      assert.equal(sample(text, 'qtsmtpd_hook_verdicts_total', { plugin: 'slow-rcpt', verdict: 'timeout' }), sessions)
      assert.equal(sample(text, 'qtsmtpd_hook_verdicts_total', { plugin: 'rcpt/ok', verdict: 'accept' }), sessions)
      assert.equal(sample(text, 'qtsmtpd_hook_duration_seconds_count', { plugin: 'slow-rcpt' }), 3 * sessions)
      // The timed-out calls waited 300 ms each: they are in the buckets above 0.25 s.
      assert.equal(
        sample(text, 'qtsmtpd_hook_duration_seconds_bucket', { plugin: 'slow-rcpt', le: '0.25' }),
        2 * sessions,
      )
      assert.equal(
        sample(text, 'qtsmtpd_queue_handoffs_total', { plugin: 'test-file-queue', outcome: 'accepted' }),
        sessions,
      )
      assert.equal(sample(text, 'qtsmtpd_queue_handoff_seconds_count', { plugin: 'test-file-queue' }), sessions)
      assert.equal(sample(text, 'qtsmtpd_received_bytes_total'), mixedSessionBytes() * sessions)
      assert.equal(sample(text, 'qtsmtpd_build_info'), 1)
      // The last socket's close may still be on its way.
      for (let i = 0; i < 50 && sample(await scrape(), 'qtsmtpd_connections_open') !== 0; i++)
        await new Promise((r) => setTimeout(r, 100))
      assert.equal(sample(await scrape(), 'qtsmtpd_connections_open'), 0)

      if (workers.length > 0) {
        assert.equal(sample(text, 'qtsmtpd_workers_ready'), 2)
        // A worker killed: its counts stay in the sums, so no counter goes down.
        const mark = cli.lines.length
        process.kill(pids[0] as number, 'SIGKILL')
        await cli.waitFor(/worker \d ready \(pid (\d+)\)/, 20_000, mark)
        const afterKill = await scrape()
        assert.equal(sample(afterKill, 'qtsmtpd_messages_accepted_total'), sessions)
        assert.equal(sample(afterKill, 'qtsmtpd_connections_total'), sessions)
        assert.equal(sample(afterKill, 'qtsmtpd_worker_exits_total'), 1)
        await assertPromtoolAccepts(afterKill)
      }
      cli.kill('SIGTERM')
      assert.equal((await cli.exited()).code, 0)
    })
  }
})
