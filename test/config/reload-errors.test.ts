/**
 * A reload (SIGHUP) of a configuration with several problems logs each of them on its own
 * line, with its file:line, and the server keeps serving the running configuration.
 */
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { makeConfig, startCli } from '../daemon/harness.ts'

async function greeted(port: number): Promise<void> {
  const c = await SmtpTestClient.connect(port)
  await c.expect(/^220 mx\.test /)
  await c.send('QUIT', 221)
  c.destroy()
}

describe('reload with a broken configuration', () => {
  const cfg = makeConfig(['rcpt_ok'])
  after(() => cfg.remove())

  it('logs every problem on its own line and keeps serving', async () => {
    const cli = startCli(['--config', cfg.config, '--listen', '127.0.0.1:0'])
    try {
      const [, port] = await cli.waitFor(/ready: pid \d+, listening on 127\.0\.0\.1:(\d+)/)
      // Served once, so its signal handlers are in place (serve.ts logs "ready" just before it sets them).
      await greeted(Number(port))
      cfg.write('plugins', 'rcpt_ok\nno_such_plugin_a\ncount_unrecognized_commands two\n')
      const mark = cli.lines.length
      cli.kill('SIGHUP')
      const plugins = join(cfg.config, 'plugins')
      const refused = 'reload refused, keeping the running configuration: '
      await cli.waitFor(new RegExp(`${refused}${plugins}:2: unknown plugin "no_such_plugin_a"`), 15_000, mark)
      await cli.waitFor(
        new RegExp(`${refused}${plugins}:3: plugin count_unrecognized_commands: option "max": expected a number`),
        15_000,
        mark,
      )
      await greeted(Number(port))
    } finally {
      cli.kill('SIGKILL')
    }
  })
})
