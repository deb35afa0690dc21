/**
 * The milter plugin's options: qpsmtpd's `milter NAME [HOST:]PORT`, and Postfix's settings under
 * their Postfix names without the `milter_` prefix (milter_default_action, milter_*_timeout,
 * milter_protocol, milter_*_macros, milter_macro_defaults, milter_macro_daemon_name, ...).
 */
import { opt } from '../../host/options.ts'

const duration = (fallback: string, description: string) =>
  opt.string({ default: fallback, pattern: /^\d+(?:ms|s|m|h)?$/, description: `${description} (30s, 5m, 1500ms)` })

export const milterOptions = {
  name: opt.string({ positional: 0, description: 'the milter as logs name it (qpsmtpd: the first argument)' }),
  socket: opt.string({
    positional: 1,
    description: 'inet:PORT@HOST, inet:HOST:PORT, unix:/path, or qpsmtpd HOST:PORT and PORT',
  }),
  default_action: opt.enum(['tempfail', 'accept', 'reject', 'quarantine'], {
    default: 'tempfail',
    description: 'when the milter fails: 451, go on without it, 550, or quarantine (milter_default_action)',
  }),
  connect_timeout: duration('30s', 'to connect (milter_connect_timeout)'),
  command_timeout: duration('30s', 'for each SMTP event and the negotiation (milter_command_timeout)'),
  content_timeout: duration('300s', 'for each packet of the message and its reply (milter_content_timeout)'),
  protocol: opt.enum(['6', '4', '3', '2'], { default: '6', description: 'protocol version (milter_protocol)' }),
  max_packet_size: opt.number({
    default: 1_048_576,
    min: 65_536,
    integer: true,
    description: 'longest packet the milter may send, in octets',
  }),
  max_edits_size: opt.number({
    default: 4_194_304,
    min: 1_024,
    integer: true,
    description: 'header and envelope changes held per message until the verdict, in octets',
  }),
  quarantine: opt.enum(['reject', 'hold', 'header'], {
    default: 'reject',
    description: 'a quarantine request: 554, to queue/quarantine with marked_only (hold), or an X-Quarantine field',
  }),
  daemon_name: opt.optionalString({ description: '{daemon_name}, default `me` (milter_macro_daemon_name)' }),
  macro_v: opt.optionalString({ description: 'the v macro, default "qtsmtpd VERSION" (milter_macro_v)' }),
  connect_macros: opt.list({
    default: ['j', '{daemon_name}', '{daemon_addr}', 'v', '_'],
    description: 'milter_connect_macros',
  }),
  helo_macros: opt.list({
    default: ['{tls_version}', '{cipher}', '{cipher_bits}', '{cert_subject}', '{cert_issuer}'],
    description: 'milter_helo_macros',
  }),
  mail_macros: opt.list({
    default: ['i', '{auth_type}', '{auth_authen}', '{auth_author}', '{mail_addr}', '{mail_host}', '{mail_mailer}'],
    description: 'milter_mail_macros',
  }),
  rcpt_macros: opt.list({
    default: ['i', '{rcpt_addr}', '{rcpt_host}', '{rcpt_mailer}'],
    description: 'milter_rcpt_macros',
  }),
  data_macros: opt.list({ default: ['i'], description: 'milter_data_macros' }),
  end_of_header_macros: opt.list({ default: ['i'], description: 'milter_end_of_header_macros' }),
  end_of_data_macros: opt.list({ default: ['i'], description: 'milter_end_of_data_macros' }),
  unknown_command_macros: opt.list({ default: [], description: 'milter_unknown_command_macros' }),
  macro_defaults: opt.list({
    default: [],
    description: 'NAME=VALUE for macros that have no value (milter_macro_defaults)',
  }),
} as const

/** `30s`, `5m`, `1500ms`, `300` (seconds) in milliseconds. */
export function durationMs(text: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text) as RegExpExecArray
  const n = Number(m[1])
  const unit = m[2] ?? 's'
  return unit === 'ms' ? n : n * { s: 1_000, m: 60_000, h: 3_600_000 }[unit as 's' | 'm' | 'h']
}

/** `NAME=VALUE` pairs by macro name without braces. */
export function macroDefaults(pairs: readonly string[]): ReadonlyMap<string, string> {
  const out = new Map<string, string>()
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq < 1) throw new Error(`macro_defaults: expected NAME=VALUE, got "${pair}"`)
    out.set(bare(pair.slice(0, eq)), pair.slice(eq + 1))
  }
  return out
}

/** `{daemon_name}` and `daemon_name` name one macro. */
export const bare = (name: string): string => (name.startsWith('{') && name.endsWith('}') ? name.slice(1, -1) : name)
