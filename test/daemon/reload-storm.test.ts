/**
 * A storm of SIGHUPs: requests that arrive while a reload runs are served together by the next
 * one, so 30 signals make at most three reloads, not thirty (issue 18: 5,000 SIGHUPs grew RSS
 * from 101 to 254 MiB), and the last reload reads the files as they are after the last signal.
 * A plugin whose set-up takes 300 ms makes each reload long enough to overlap the signals.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { freePort } from '../peers/free-port.ts'
import { makeConfig, repo, startCli } from './harness.ts'

const cleanup: (() => void)[] = []
after(() => {
  for (const f of cleanup.reverse()) f()
})

const slowSetup = `
import { definePlugin } from ${JSON.stringify(join(repo, 'src/host/define-plugin.ts'))}
export default definePlugin({
  name: 'slow-setup',
  options: {},
  async setup() {
    await new Promise((r) => setTimeout(r, 300))
    return { hooks: {} }
  },
})
`

const count = (lines: readonly string[], re: RegExp) => lines.filter((l) => re.test(l)).length

describe('SIGHUP storm', { timeout: 60_000 }, () => {
  test('30 SIGHUPs make at most three reloads, and the last one reads the files as they are', async () => {
    const cfg = makeConfig(['slow-setup', 'rcpt_ok'])
    cleanup.push(cfg.remove)
    writeFileSync(join(cfg.dir, 'plugins', 'slow-setup.ts'), slowSetup)
    const port = await freePort()
    const cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/ready: pid \d+/)
    const mark = cli.lines.length

    for (let i = 0; i < 30; i++) {
      if (i === 29) cfg.write('me', 'mx2.test\n')
      cli.kill('SIGHUP')
      await new Promise((r) => setTimeout(r, 10))
    }
    // Quiet: every reload that started has ended, and none started for a second.
    let seen = -1
    for (;;) {
      const lines = cli.lines.slice(mark)
      const started = count(lines, /reloading the configuration \(SIGHUP\)/)
      const ended = count(lines, /configuration reloaded; new connections use it|reload refused/)
      if (started === ended && started === seen) break
      seen = started === ended ? started : -1
      await new Promise((r) => setTimeout(r, 1000))
    }
    assert.ok(seen >= 2 && seen <= 3, `${seen} reloads for 30 SIGHUPs`)

    const c = await SmtpTestClient.connect(port)
    cleanup.push(() => c.destroy())
    assert.match((await c.expect(220)).text, /^mx2\.test /)
    await c.send('QUIT', 221)
    cli.kill('SIGTERM')
    assert.equal((await cli.exited()).code, 0)
  })
})
