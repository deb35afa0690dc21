/**
 * The admin commands: `qtsmtpd --reload --pid-file F` and `--stop --pid-file F` signal the
 * server whose pid the file holds (SIGHUP: reload; SIGTERM: drain and stop). `--reload` waits
 * for the server's outcome and fails with exit code 2 when the configuration was refused.
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
    assert.match(reload.stdout, /^reload requested from process \d+\nconfiguration reloaded\n$/)
    await cli.waitFor(/configuration reloaded; new connections use it/)

    const stop = await run(process.execPath, [bin, '--stop', '--pid-file', pidFile])
    assert.match(stop.stdout, /^stop requested from process \d+\n$/)
    assert.equal((await cli.exited()).code, 0)
  })

  test('--reload of a broken configuration fails with exit code 2 and says why', async () => {
    for (const workers of [[], ['--workers', '2']]) {
      const cfg = makeConfig(['rcpt_ok'])
      cleanup.push(cfg.remove)
      const pidFile = join(cfg.config, '..', 'qtsmtpd.pid')
      const port = await freePort()
      const cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`, '--pid-file', pidFile, ...workers])
      cleanup.push(() => cli.kill('SIGKILL'))
      await cli.waitFor(workers.length > 0 ? /all 2 workers ready/ : /ready: pid \d+/)

      cfg.write('plugins', 'rcpt_ok\nno_such_plugin\n')
      await assert.rejects(
        run(process.execPath, [bin, '--reload', '--pid-file', pidFile]),
        (e: { code: number; stdout: string; stderr: string }) => {
          assert.equal(e.code, 2)
          assert.match(e.stdout, /^reload requested from process \d+\n$/)
          assert.match(e.stderr, /^qtsmtpd: --reload: refused, the running configuration stays:\n/)
          // Once, though every worker refused it.
          assert.equal(e.stderr.match(/config\/plugins:2: .*no_such_plugin/g)?.length, 1, e.stderr)
          return true
        },
      )
      // Fixed, it is taken.
      cfg.write('plugins', `rcpt_ok\ntest-file-queue ${cfg.out}\n`)
      const ok = await run(process.execPath, [bin, '--reload', '--pid-file', pidFile])
      assert.match(
        ok.stdout,
        workers.length > 0 ? /\nconfiguration reloaded by 2 workers\n$/ : /\nconfiguration reloaded\n$/,
      )
      cli.kill('SIGTERM')
      assert.equal((await cli.exited()).code, 0)
    }
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
