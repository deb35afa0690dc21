/**
 * `qtsmtpd --check`, run as an operator runs it: the exit code, and what it prints on stdout
 * and stderr for configurations that are wrong or doubtful.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { makeConfig, startCli, type TestConfig } from '../daemon/harness.ts'

const configs: TestConfig[] = []
after(() => {
  for (const c of configs) c.remove()
})

async function check(plugins: readonly string[], files: Readonly<Record<string, string>> = {}) {
  const config = makeConfig(plugins, files)
  configs.push(config)
  const cli = startCli(['--check', '--config', config.config])
  try {
    // A hang detector, not a timing assertion: --check of a small config takes well under a second.
    const { code } = await cli.exited(60_000)
    return { code, output: cli.lines.join('\n'), config }
  } finally {
    cli.kill('SIGKILL')
  }
}

describe('--check with paths the kernel will not create', () => {
  // Node's recursive mkdir spins forever under /proc (mkdir answers ENOENT with the parent there).
  it('queue/maildir under /proc: an error naming the line, not a spin at 100% CPU', async () => {
    const { code, output, config } = await check(['rcpt_ok', 'queue/maildir /proc/qtsmtpd-test/maildir'])
    assert.equal(code, 2, output)
    assert.match(
      output,
      new RegExp(
        `${config.config}/plugins:2: plugin queue/maildir: cannot create directory /proc/qtsmtpd-test: ENOENT`,
      ),
    )
  })

  it('spool_dir under /proc: an error, not a spin', async () => {
    const { code, output } = await check(['rcpt_ok'], { spool_dir: '/proc/qtsmtpd-test/spool' })
    assert.equal(code, 2, output)
    assert.match(output, /cannot create directory \/proc\/qtsmtpd-test: ENOENT/)
  })
})
