/**
 * `qtsmtpd --check`, run as an operator runs it: the exit code, and what it prints on stdout
 * and stderr for configurations that are wrong or doubtful.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { makeConfig, startCli, type TestConfig } from '../daemon/harness.ts'

const configs: TestConfig[] = []
const dirs: string[] = []
after(() => {
  for (const c of configs) c.remove()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

async function runCheck(configDir: string, extra: readonly string[] = []) {
  const cli = startCli(['--check', '--config', configDir, ...extra])
  try {
    // A hang detector, not a timing assertion: --check of a small config takes well under a second.
    const { code } = await cli.exited(60_000)
    return { code, output: cli.lines.join('\n'), lines: cli.lines }
  } finally {
    cli.kill('SIGKILL')
  }
}

/** A config dir with the test queue appended (harness.makeConfig). */
async function check(plugins: readonly string[], files: Readonly<Record<string, string>> = {}) {
  const config = makeConfig(plugins, files)
  configs.push(config)
  return { ...(await runCheck(config.config)), config }
}

/** A config dir with exactly these files. */
function configWith(files: Readonly<Record<string, string>>): string {
  const dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-check-'))
  dirs.push(dir)
  mkdirSync(join(dir, 'config'))
  for (const [k, v] of Object.entries(files)) writeFileSync(join(dir, 'config', k), `${v}\n`)
  return join(dir, 'config')
}

describe('--check prints its warnings on stderr', () => {
  it('even when config/logging sends the log to a file', async () => {
    const config = configWith({
      plugins: 'auth/auth_flat_file\nrcpt_ok',
      logging: 'logging/file loglevel LOGINFO log/qtsmtpd.log',
      me: 'mx.test',
    })
    mkdirSync(join(config, '../log'))
    const { code, lines, output } = await runCheck(config)
    assert.equal(code, 0, output)
    assert.deepEqual(lines.filter((l) => l.startsWith('qtsmtpd: ')).sort(), [
      'qtsmtpd: warning: AUTH is never offered: auth/auth_flat_file would answer it, but tls_before_auth is on (the default) and no tls plugin is loaded, so no session is encrypted; load the tls plugin, or set tls_before_auth 0 to allow AUTH without TLS',
      'qtsmtpd: warning: auth/auth_flat_file: no flat_auth_pw file: every AUTH will be refused',
      'qtsmtpd: warning: no queue plugin: every message will get 451 (add queue/maildir or another)',
    ])
    assert.ok(lines.includes('configuration OK'), output)
  })

  it('a clean configuration prints only configuration OK', async () => {
    const { code, lines } = await check(['rcpt_ok'])
    assert.equal(code, 0)
    assert.deepEqual(lines, ['configuration OK'])
  })
})

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

describe('--check and listener selectors', () => {
  const plugins = '[submission:587] auth/auth_flat_file\n[!submission] rcpt_ok'

  it('names are checked against the --listen given with it', async () => {
    const config = configWith({ plugins, me: 'mx.test', tls_before_auth: '0' })
    const { code, output } = await runCheck(config, [
      '--listen',
      '127.0.0.1:25',
      '--listen',
      '127.0.0.1:2587/submission',
    ])
    assert.equal(code, 2, output)
    assert.equal(
      output,
      `qtsmtpd: ${config}/plugins:1: listener selector [submission:587]: "submission:587" is neither a role ` +
        '(smtp, submission, smtps) nor the name of a listener (smtp:25, submission:2587)',
    )
  })

  it('and pass when they name a listener', async () => {
    const config = configWith({ plugins, me: 'mx.test', tls_before_auth: '0' })
    const { code, output } = await runCheck(config, ['--listen', '127.0.0.1:25', '--listen', '127.0.0.1:587'])
    assert.equal(code, 0, output)
  })
})

describe('--check with a log directory that does not exist', () => {
  // Debian's config/logging names /var/log/qpsmtpd, which only the qpsmtpd package creates.
  it('an error naming the config/logging line, not a failure at the first write', async () => {
    const config = configWith({
      plugins: 'rcpt_ok',
      logging: 'logging/file loglevel LOGINFO var/log/qpsmtpd/qpsmtpd.log',
      me: 'mx.test',
    })
    const { code, output } = await runCheck(config)
    assert.equal(code, 2, output)
    assert.ok(
      output.includes(
        `${config}/logging:1: plugin logging/file: log directory ${join(config, '../var/log/qpsmtpd')} does not exist: ` +
          'create it, writable by the user qtsmtpd runs as (with systemd: LogsDirectory=)',
      ),
      output,
    )
  })
})
