/**
 * qpsmtpd's dspam plugin is not ported: a configuration that loads it stops at start-up at its
 * line, saying why and what to use instead, with the plugin's arguments as qpsmtpd took them.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, it } from 'node:test'
import { ConfigError, ConfigErrors } from '../../src/config/config-error.ts'
import { runtimeFromConfigDir } from '../../src/server/load-runtime.ts'

const dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-dspam-'))
after(() => rmSync(dir, { recursive: true, force: true }))

it('dspam stops the start at its line, pointing to rspamd and spamassassin', async () => {
  writeFileSync(join(dir, 'me'), 'mx.test\n')
  writeFileSync(join(dir, 'plugins'), 'rcpt_ok\ndspam learn_from_sa 7 reject 0.95\nqueue/discard\n')
  await assert.rejects(runtimeFromConfigDir(dir), (e: unknown) => {
    // One error comes alone, several together.
    const errors = e instanceof ConfigErrors ? e.errors : [e]
    assert.ok(
      errors.every((x) => x instanceof ConfigError),
      String(e),
    )
    assert.deepEqual(
      errors.map((x) => (x as Error).message),
      [
        `${join(dir, 'plugins')}:2: qpsmtpd plugin "dspam" is not ported to qtsmtpd: DSPAM is unmaintained ` +
          '(last release 2012) and not in Debian, so there is no daemon to test a port against; classify spam ' +
          'with rspamd (docs/plugins/rspamd.md) or spamassassin (docs/plugins/spamassassin.md) instead, and ' +
          'remove this line (docs/plugins/dspam.md)',
      ],
    )
    return true
  })
})
