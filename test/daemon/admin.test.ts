/**
 * The admin commands: `qtsmtpd --reload --pid-file F` and `--stop --pid-file F` signal the
 * server whose pid the file holds (SIGHUP: reload; SIGTERM: drain and stop).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { freePort } from '../peers/free-port.ts'
import { bin, makeConfig, startCli } from './harness.ts'

const run = promisify(execFile)
const cleanup: (() => void)[] = []
after(() => {
  for (const f of cleanup.reverse()) f()
})

describe('admin commands', { timeout: 60_000 }, () => {
  test('--reload makes the running server reload; --stop makes it drain and exit', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const pidFile = join(cfg.config, '..', 'qtsmtpd.pid')
    const port = await freePort()
    const cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`, '--pid-file', pidFile])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/ready: pid \d+/)

    const reload = await run(process.execPath, [bin, '--reload', '--pid-file', pidFile])
    assert.match(reload.stdout, /^reload requested from process \d+\n$/)
    await cli.waitFor(/configuration reloaded; new connections use it/)

    const stop = await run(process.execPath, [bin, '--stop', '--pid-file', pidFile])
    assert.match(stop.stdout, /^stop requested from process \d+\n$/)
    assert.equal((await cli.exited()).code, 0)
  })

  test('without a pid file, or with a stale one, the command says why and fails', async () => {
    await assert.rejects(run(process.execPath, [bin, '--reload']), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1)
      assert.match(e.stderr, /--reload needs --pid-file/)
      return true
    })
    await assert.rejects(
      run(process.execPath, [bin, '--stop', '--pid-file', '/nonexistent/qtsmtpd.pid']),
      (e: { code: number; stderr: string }) => {
        assert.match(e.stderr, /--stop: cannot read \/nonexistent\/qtsmtpd\.pid/)
        return true
      },
    )
  })
})
