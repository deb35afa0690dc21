/**
 * One start reports every configuration problem, each at its file:line, so that an operator
 * fixes a configuration in one round (Debian's qpsmtpd configuration took eight runs before).
 * A qpsmtpd plugin qtsmtpd lacks is named with its equivalent or status; a Perl plugin file in
 * plugin_dirs is named as Perl.
 */
import assert from 'node:assert/strict'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { after, describe, it } from 'node:test'
import { ConfigErrors } from '../../src/config/config-error.ts'
import { explainUnknownPlugin } from '../../src/config/qpsmtpd-plugins.ts'
import { PluginCatalog } from '../../src/host/loader.ts'
import { builtinPlugins } from '../../src/plugins/index.ts'
import { runtimeFromConfigDir } from '../../src/server/load-runtime.ts'
import { startCli } from '../daemon/harness.ts'

const dirs: string[] = []
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix))
  dirs.push(d)
  return d
}

async function check(configDir: string) {
  const cli = startCli(['--check', '--config', configDir])
  try {
    // A hang detector, not a timing assertion.
    const { code } = await cli.exited(60_000)
    return { code, lines: cli.lines }
  } finally {
    cli.kill('SIGKILL')
  }
}

const PERL_PLUGIN = `#!perl -w

=head1 NAME

my_policy - a site's own qpsmtpd plugin

=cut

sub hook_rcpt {
    my ($self, $transaction, $recipient) = @_;
    return DECLINED;
}
`

describe('every configuration problem in one start', () => {
  const root = tempDir('qtsmtpd-errors-')
  const config = join(root, 'config')
  const plugins = join(root, 'plugins')
  mkdirSync(config)
  mkdirSync(plugins)
  writeFileSync(join(plugins, 'my_policy'), PERL_PLUGIN)
  const files: Record<string, string> = {
    me: 'mx.test',
    loglevel: 'loud',
    plugin_dirs: plugins,
    'smtpd.conf': 'recipient_limit lots\nno_such_setting 1\nmessage_size_limit 1000000',
    plugins: [
      'relay',
      'count_unrecognized_commands two',
      'check_norelay',
      'my_policy',
      'no_such_plugin_xyz',
      '$include plugins.local',
      'naughty loglevel banana',
      'tls /nonexistent/qtsmtpd.crt /nonexistent/qtsmtpd.key',
      'rcpt_ok',
      'queue/maildir /proc/qtsmtpd-test/maildir',
    ].join('\n'),
  }
  for (const [k, v] of Object.entries(files)) writeFileSync(join(config, k), `${v}\n`)
  const at = (file: string, line: number) => `${join(config, file)}:${line}`
  const expected = [
    `${at('loglevel', 1)}: unknown log level "loud"`,
    `${at('smtpd.conf', 1)}: expected a whole number, got "lots"`,
    `${at('smtpd.conf', 2)}: unknown setting "no_such_setting" (see docs/limits.md)`,
    `${at('plugins', 2)}: plugin count_unrecognized_commands: option "max": expected a number, got "two"`,
    `${at('plugins', 3)}: qpsmtpd plugin "check_norelay" is "relay" in qtsmtpd (qpsmtpd merged it into relay (norelayclients)): write relay instead`,
    `${at('plugins', 4)}: plugin "my_policy" is ${join(plugins, 'my_policy')}, a qpsmtpd plugin written in Perl, which qtsmtpd cannot run: port it to TypeScript (docs/plugins.md, "Porting from qpsmtpd")`,
    `${at('plugins', 5)}: unknown plugin "no_such_plugin_xyz": not built in, no .ts or .js file of that name in plugin_dirs (${plugins}), no npm package`,
    `${at('plugins', 6)}: cannot $include ${join(config, 'plugins.local')}: ENOENT`,
    `${at('plugins', 7)}: plugin naughty: option "loglevel": expected 0-7, a level name (LOGINFO, info, ...), or +N/-N, got "banana"`,
    `${at('plugins', 8)}: plugin tls: certificate or key not found (cert: /nonexistent/qtsmtpd.crt, key: /nonexistent/qtsmtpd.key)`,
    `${at('plugins', 10)}: plugin queue/maildir: cannot create directory /proc/qtsmtpd-test: ENOENT (the file system under /proc refuses new directories)`,
  ]

  it('are thrown together, in file order, by the loader', async () => {
    await assert.rejects(runtimeFromConfigDir(config), (e: unknown) => {
      assert.ok(e instanceof ConfigErrors, String(e))
      assert.deepEqual(
        e.errors.map((x) => x.message),
        expected,
      )
      return true
    })
  })

  it('are printed by --check, one per line, with a count, and exit code 2', async () => {
    const { code, lines } = await check(config)
    assert.equal(code, 2, lines.join('\n'))
    assert.deepEqual(lines, [
      ...expected.map((l) => `qtsmtpd: ${l}`),
      `qtsmtpd: ${expected.length} configuration errors`,
    ])
  })
})

const debian = '/etc/qpsmtpd'
const debianPlugins = '/usr/share/qpsmtpd/plugins'
const qpsmtpdInstalled = existsSync(join(debian, 'plugins')) && existsSync(debianPlugins)

describe("Debian's qpsmtpd configuration", { skip: !qpsmtpdInstalled && 'qpsmtpd (Debian) is not installed' }, () => {
  it('--check accepts every plugin it names (qtsmtpd has them all, DNS lists included)', async () => {
    // A private copy, so spool and log files stay out of /var whoever runs the test.
    const root = tempDir('qtsmtpd-debian-')
    const config = join(root, 'qpsmtpd')
    cpSync(debian, config, { recursive: true })
    writeFileSync(join(config, 'spool_dir'), `${join(root, 'spool')}\n`)
    writeFileSync(join(config, 'logging'), `logging/file loglevel LOGINFO ${join(root, 'qpsmtpd.log')}\n`)
    const { code, lines } = await check(config)
    assert.equal(code, 0, lines.join('\n'))
    // Debian chooses the queue plugin at package configuration (debian-queue-method), empty here.
    assert.deepEqual(lines, [
      'qtsmtpd: warning: no queue plugin: every message will get 451 (add queue/maildir or another)',
      'configuration OK',
    ])
  })

  it('every plugin qpsmtpd ships is built in or explained', () => {
    const walk = (d: string): string[] =>
      readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]))
    const catalog = new PluginCatalog(builtinPlugins)
    const names = walk(debianPlugins)
      .map((f) => relative(debianPlugins, f))
      .filter((n) => n !== 'registry.txt')
    assert.ok(names.length > 80, names.join(' '))
    const unexplained = names.filter(
      (n) => catalog.get(n) === undefined && /^unknown plugin/.test(explainUnknownPlugin(n, [debianPlugins])),
    )
    assert.deepEqual(unexplained, [])
  })
})
