/**
 * What to tell an operator whose config/plugins names a plugin qtsmtpd does not have: every
 * plugin of qpsmtpd 0.94 and later (and the older names Debian still ships) with its qtsmtpd
 * equivalent, or the reason it is missing; and, for a name found in plugin_dirs as a Perl file,
 * that qtsmtpd runs TypeScript and JavaScript plugins only.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs'
import { join } from 'node:path'

type Advice =
  /** The same plugin under its qtsmtpd name. */
  | { readonly kind: 'renamed'; readonly to: string; readonly why: string }
  /** The core does it; the line can go. */
  | { readonly kind: 'core'; readonly text: string }
  /** To be built under this name (the plugin issues); `as` is its newer qpsmtpd name. */
  | { readonly kind: 'later'; readonly as?: string }
  /** Not a plugin, or nothing qtsmtpd will run. */
  | { readonly kind: 'never'; readonly text: string }
  /** A qpsmtpd plugin deliberately left out: why, and what to use instead. */
  | { readonly kind: 'notPorted'; readonly text: string }

const renamed = (to: string, why = 'qpsmtpd 0.94 renamed it'): Advice => ({ kind: 'renamed', to, why })
const later = (as?: string): Advice => (as === undefined ? { kind: 'later' } : { kind: 'later', as })

const advice: Readonly<Record<string, Advice>> = {
  // Old names qpsmtpd merged or renamed (UPGRADING.md, Debian's README.check_plugins).
  check_norelay: renamed('relay', 'qpsmtpd merged it into relay (norelayclients)'),
  relay_only: { kind: 'renamed', to: 'relay only 1', why: 'qpsmtpd merged it into relay' },
  // qpsmtpd-async's variants of plugins that are asynchronous here anyway.
  // Connection, HELO, sender and recipient policy, content checks.
  ...Object.fromEntries(
    [
      'auth/auth_imap',
      'auth/auth_ldap_bind',
      'auth/auth_vpopmail',
      'auth/auth_vpopmail_sql',
      'auth/auth_vpopmaild',
    ].map((name) => [name, later()]),
  ),
  stunnel: {
    kind: 'never',
    text: 'qtsmtpd reads the PROXY protocol itself: list the proxy in config/proxy_trusted (docs/running.md) and remove this line',
  },
  tls_cert: {
    kind: 'never',
    text: 'it is a script that makes a certificate, not a plugin: make one with openssl (docs/plugins/tls.md) and load tls',
  },
  karma_tool: {
    kind: 'never',
    text: 'it is a command-line tool, not a plugin: run qtsmtpd karma (docs/plugins/karma.md)',
  },
  http_config: { kind: 'never', text: 'qtsmtpd reads its configuration from files only' },
  user_config: { kind: 'never', text: 'per-user configuration files are not supported' },
  'auth/authnull': { kind: 'never', text: 'qpsmtpd itself removed it (it accepted every password)' },
  dspam: {
    kind: 'notPorted',
    text:
      'DSPAM is unmaintained (last release 2012) and not in Debian, so there is no daemon to test a port against; ' +
      'classify spam with rspamd (docs/plugins/rspamd.md) or spamassassin (docs/plugins/spamassassin.md) instead, ' +
      'and remove this line (docs/plugins/dspam.md)',
  },
}

function adviceText(name: string, a: Advice): string {
  switch (a.kind) {
    case 'renamed':
      return `qpsmtpd plugin "${name}" is "${a.to}" in qtsmtpd (${a.why}): write ${a.to} instead`
    case 'core':
      return `qpsmtpd plugin "${name}" is not needed: ${a.text}`
    case 'later': {
      const also = a.as === undefined ? '' : ` (${a.as} since qpsmtpd 0.94)`
      return `qpsmtpd plugin "${name}"${also} is not yet available in qtsmtpd: remove or comment out the line`
    }
    case 'never':
      return `qpsmtpd plugin "${name}" is not available in qtsmtpd: ${a.text}`
    case 'notPorted':
      return `qpsmtpd plugin "${name}" is not ported to qtsmtpd: ${a.text}`
  }
}

// A qpsmtpd plugin file: POD, a perl #! line, subs, `$self->`, `use strict`.
const PERL = /^#!.*\bperl\b|^=head1\b|^\s*sub\s+\w+\s*\{|^\s*use\s+(?:strict|warnings|Qpsmtpd\b)|\$self->/m

function looksLikePerl(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false
    const fd = openSync(file, 'r')
    try {
      const buf = Buffer.alloc(8192)
      const n = readSync(fd, buf, 0, buf.length, 0)
      return PERL.test(buf.subarray(0, n).toString('latin1'))
    } finally {
      closeSync(fd)
    }
  } catch {
    return false
  }
}

/**
 * Why `name` loads nothing, for the `config/plugins` error: a known qpsmtpd plugin gets its
 * equivalent or status; a Perl file of that name in plugin_dirs is named as Perl.
 */
export function explainUnknownPlugin(name: string, pluginDirs: readonly string[]): string {
  const known = advice[name]
  if (known !== undefined) return adviceText(name, known)
  if (!name.includes('..'))
    for (const dir of pluginDirs) {
      const file = join(dir, name)
      if (looksLikePerl(file))
        return (
          `plugin "${name}" is ${file}, a qpsmtpd plugin written in Perl, which qtsmtpd cannot run: ` +
          'port it to TypeScript (docs/plugins.md, "Porting from qpsmtpd")'
        )
    }
  const dirs = pluginDirs.length === 0 ? 'none' : pluginDirs.join(', ')
  return `unknown plugin "${name}": not built in, no .ts or .js file of that name in plugin_dirs (${dirs}), no npm package`
}
