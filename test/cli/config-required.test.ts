/**
 * Without --config the command refuses to start: it never serves a configuration the operator
 * did not name (a `config/` directory that happens to be in the working directory, say).
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { makeConfig, startCli } from '../daemon/harness.ts'

describe('qtsmtpd without --config', () => {
  // A working directory holding a config/ directory, as a qpsmtpd install directory does.
  const config = makeConfig(['rcpt_ok'])
  after(() => config.remove())

  for (const args of [['--listen', '127.0.0.1:0'], ['--check'], ['--stdio']]) {
    it(`${args.join(' ')}: refuses with exit code 1 and says --config is required`, async () => {
      const cli = startCli(args, { cwd: config.dir })
      try {
        // A hang detector: before, the server started on ./config and never exited.
        const { code } = await cli.exited(30_000)
        assert.equal(code, 1, cli.lines.join('\n'))
        assert.match(cli.lines[0] ?? '', /^qtsmtpd: --config DIR is required: .* `npm start` runs the example/)
        assert.doesNotMatch(cli.lines.join('\n'), /ready|configuration OK/)
      } finally {
        cli.kill('SIGKILL')
      }
    })
  }

  it('--version and --help need no configuration', async () => {
    for (const args of [['--version'], ['--help']]) {
      const cli = startCli(args, { cwd: config.dir })
      const { code } = await cli.exited(30_000)
      assert.equal(code, 0, cli.lines.join('\n'))
    }
  })
})
