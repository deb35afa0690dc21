import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from './config-error.ts'
import { parsePluginList } from './plugin-list.ts'

const at = (text: string, line = 7) => ({ text, file: 'config/plugins', line })

describe('parsePluginList', () => {
  const ok = [
    { name: 'bare name', text: 'rcpt_ok', want: { name: 'rcpt_ok', instance: undefined, args: [] } },
    { name: 'args', text: 'relay only 1', want: { name: 'relay', instance: undefined, args: ['only', '1'] } },
    {
      name: 'tabs and runs of spaces',
      text: 'dnsbl\t reject  naughty',
      want: { name: 'dnsbl', instance: undefined, args: ['reject', 'naughty'] },
    },
    {
      name: 'subdir name',
      text: 'virus/clamdscan deny_viruses yes',
      want: { name: 'virus/clamdscan', instance: undefined, args: ['deny_viruses', 'yes'] },
    },
    {
      name: 'second instance',
      text: 'check_badmailfrom:1 reject 0',
      want: { name: 'check_badmailfrom', instance: '1', args: ['reject', '0'] },
    },
    {
      name: 'instance 0 on subdir',
      text: 'ident/p0f:0 /tmp/p0f.sock',
      want: { name: 'ident/p0f', instance: '0', args: ['/tmp/p0f.sock'] },
    },
    { name: 'perl module name', text: 'My::Plugin x', want: { name: 'My::Plugin', instance: undefined, args: ['x'] } },
    {
      name: 'quoted arg with spaces',
      text: 'greeting msg "Hello there  world" x',
      want: { name: 'greeting', instance: undefined, args: ['msg', 'Hello there  world', 'x'] },
    },
    {
      name: 'quoted escapes',
      text: 'p "a \\"b\\" \\\\ c\\d"',
      want: { name: 'p', instance: undefined, args: ['a "b" \\ c\\d'] },
    },
    { name: 'empty quoted arg', text: 'p "" x', want: { name: 'p', instance: undefined, args: ['', 'x'] } },
    {
      name: 'quote inside a word is literal',
      text: 'p a="b c',
      want: { name: 'p', instance: undefined, args: ['a="b', 'c'] },
    },
    { name: 'printable UTF-8 arg', text: 'p grüße', want: { name: 'p', instance: undefined, args: ['grüße'] } },
  ] as const
  for (const c of ok) {
    it(c.name, () => {
      const [got] = parsePluginList([at(c.text)])
      assert.deepEqual(got, { ...c.want, args: [...c.want.args], file: 'config/plugins', line: 7 })
    })
  }

  it('a leading listener selector', () => {
    const [only, except] = parsePluginList([at('[smtp, mx:25] dnsbl zen.test', 3), at(' [ ! submission ]\trcpt_ok')])
    assert.deepEqual(only, {
      name: 'dnsbl',
      instance: undefined,
      args: ['zen.test'],
      file: 'config/plugins',
      line: 3,
      listeners: { except: false, words: ['smtp', 'mx:25'], text: '[smtp,mx:25]', file: 'config/plugins', line: 3 },
    })
    assert.deepEqual(except?.listeners, {
      except: true,
      words: ['submission'],
      text: '[!submission]',
      file: 'config/plugins',
      line: 7,
    })
    assert.equal(except?.name, 'rcpt_ok')
  })

  it('keeps order and line numbers', () => {
    const got = parsePluginList([at('a', 1), at('b', 5)])
    assert.deepEqual(
      got.map((p) => [p.name, p.line]),
      [
        ['a', 1],
        ['b', 5],
      ],
    )
  })

  const bad = [
    { name: 'NUL byte', text: 'p a\0b', code: 'SMTPD_ERR_CONFIG_SYNTAX' },
    { name: 'ESC', text: 'p \x1b[31m', code: 'SMTPD_ERR_CONFIG_SYNTAX' },
    { name: 'DEL', text: 'p a\x7f', code: 'SMTPD_ERR_CONFIG_SYNTAX' },
    { name: 'C1 control', text: 'p a\u0085', code: 'SMTPD_ERR_CONFIG_SYNTAX' },
    { name: 'bidi override', text: 'p a\u202eb', code: 'SMTPD_ERR_CONFIG_SYNTAX' },
    { name: 'invalid UTF-8 (U+FFFD)', text: 'p a\uFFFD', code: 'SMTPD_ERR_CONFIG_SYNTAX' },
    { name: 'unterminated quote', text: 'p "abc', code: 'SMTPD_ERR_PLUGIN_OPTION' },
    { name: 'junk after quote', text: 'p "abc"def', code: 'SMTPD_ERR_PLUGIN_OPTION' },
    { name: 'quoted name', text: '"p q" x', code: 'SMTPD_ERR_PLUGIN_UNKNOWN' },
    { name: 'path escape', text: '../evil', code: 'SMTPD_ERR_PLUGIN_UNKNOWN' },
    { name: 'inner path escape', text: 'virus/../../evil', code: 'SMTPD_ERR_PLUGIN_UNKNOWN' },
    { name: 'absolute path', text: '/tmp/evil', code: 'SMTPD_ERR_PLUGIN_UNKNOWN' },
    { name: 'non-numeric instance', text: 'p:x', code: 'SMTPD_ERR_PLUGIN_UNKNOWN' },
    { name: 'empty instance', text: 'p:', code: 'SMTPD_ERR_PLUGIN_UNKNOWN' },
    { name: 'empty line', text: '', code: 'SMTPD_ERR_PLUGIN_UNKNOWN' },
    { name: 'selector without ]', text: '[smtp dnsbl', code: 'SMTPD_ERR_CONFIG_SYNTAX' },
    { name: 'selector without a plugin', text: '[smtp]', code: 'SMTPD_ERR_CONFIG_SYNTAX' },
    { name: 'selector glued to the name', text: '[smtp]dnsbl', code: 'SMTPD_ERR_CONFIG_SYNTAX' },
    { name: 'empty selector', text: '[] dnsbl', code: 'SMTPD_ERR_CONFIG_SYNTAX' },
    { name: 'empty negated selector', text: '[!] dnsbl', code: 'SMTPD_ERR_CONFIG_SYNTAX' },
    { name: 'empty word in a selector', text: '[smtp,,smtps] dnsbl', code: 'SMTPD_ERR_CONFIG_SYNTAX' },
    { name: 'space-separated words', text: '[smtp smtps] dnsbl', code: 'SMTPD_ERR_CONFIG_SYNTAX' },
    { name: 'two selectors', text: '[smtp] [smtps] dnsbl', code: 'SMTPD_ERR_PLUGIN_UNKNOWN' },
  ] as const
  for (const c of bad) {
    it(`error: ${c.name}`, () => {
      assert.throws(
        () => parsePluginList([at('ok'), at(c.text, 9)]),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError)
          assert.equal(err.code, c.code)
          assert.equal(err.line, 9)
          assert.match(err.message, /^config\/plugins:9: /)
          return true
        },
      )
    })
  }
})
