import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../config/config-error.ts'
import type { ConfigSource } from '../config/config-source.ts'
import { readCoreSettings } from './core-settings.ts'

/** A config source from file texts, with the file:line a real directory would give. */
function source(files: Record<string, string>): ConfigSource {
  return {
    lines: (key) => {
      const text = files[key]
      if (text === undefined) return undefined
      return text
        .split('\n')
        .map((t, i) => ({ text: t.trim(), file: `/etc/qt/config/${key}`, line: i + 1 }))
        .filter((l) => l.text !== '' && !l.text.startsWith('#'))
    },
    path: (key) => (files[key] === undefined ? undefined : `/etc/qt/config/${key}`),
  }
}

describe('readCoreSettings', () => {
  it('reads smtpd.conf keys', () => {
    const s = readCoreSettings(source({ 'smtpd.conf': 'command_line_limit 1000\ndata_timeout 2m\n' }))
    assert.equal(s.session.limits.commandLine, 1000)
    assert.equal(s.session.timeouts.dataMs, 120_000)
  })

  it('reads recipient_overshoot_limit (default 1000, as Postfix)', () => {
    assert.equal(readCoreSettings(source({})).session.limits.recipientOvershoot, 1000)
    const s = readCoreSettings(source({ 'smtpd.conf': 'recipient_overshoot_limit 0\n' }))
    assert.equal(s.session.limits.recipientOvershoot, 0)
  })

  it('me-auth-results: the authserv-id, me by default, none for no header (qpsmtpd)', () => {
    assert.equal(readCoreSettings(source({ me: 'mx.example.org' })).session.authservId, 'mx.example.org')
    const own = readCoreSettings(source({ me: 'mx.example.org', 'me-auth-results': 'example.org' }))
    assert.equal(own.session.authservId, 'example.org')
    assert.equal(readCoreSettings(source({ 'me-auth-results': 'none' })).session.authservId, null)
  })

  it('a command_line_limit under 512 names the file and the line', () => {
    assert.throws(
      () => readCoreSettings(source({ 'smtpd.conf': '# limits\nrecipient_limit 50\ncommand_line_limit 100\n' })),
      (e: unknown) =>
        e instanceof ConfigError && e.file === '/etc/qt/config/smtpd.conf' && e.line === 3 && /512/.test(e.text),
    )
  })
})
