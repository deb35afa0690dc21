/**
 * ConfigError: a configuration problem found at start-up or reload, located at `file:line`.
 *
 * The `code` is stable (`SMTPD_ERR_*`) so tooling and tests can match on it; the message
 * is for humans and reads like a compiler diagnostic: `config/plugins:12: unknown plugin`.
 */

export const ConfigErrorCode = {
  /** A line that cannot be parsed (bad `$include`, bad CIDR, control characters, …). */
  Syntax: 'SMTPD_ERR_CONFIG_SYNTAX',
  /** `$include` that leads back to a file already being expanded. */
  IncludeCycle: 'SMTPD_ERR_CONFIG_INCLUDE_CYCLE',
  /** `$include` of a file or directory that does not exist or cannot be read. */
  IncludeMissing: 'SMTPD_ERR_CONFIG_INCLUDE_MISSING',
  /** A config key that is empty, absolute or escapes the config directory (`..`). */
  Key: 'SMTPD_ERR_CONFIG_KEY',
  /** The primary config directory is missing or not a directory. */
  Dir: 'SMTPD_ERR_CONFIG_DIR',
  /** A config file that exists but cannot be read (permissions, I/O error). */
  Read: 'SMTPD_ERR_CONFIG_READ',
  /** A plugin name that cannot name any plugin. */
  PluginUnknown: 'SMTPD_ERR_PLUGIN_UNKNOWN',
  /** A malformed plugin argument (unterminated quote, bad instance suffix, …). */
  PluginOption: 'SMTPD_ERR_PLUGIN_OPTION',
} as const
export type ConfigErrorCode = (typeof ConfigErrorCode)[keyof typeof ConfigErrorCode]

/**
 * @example
 * throw new ConfigError('SMTPD_ERR_CONFIG_SYNTAX', 'config/relayclients', 3, 'bad CIDR "1.2.3.4/33"')
 * // message: 'config/relayclients:3: bad CIDR "1.2.3.4/33"'
 */
export class ConfigError extends Error {
  readonly code: ConfigErrorCode | (string & {})
  readonly file: string
  readonly line: number | undefined
  /** The message without the `file:line: ` prefix. */
  readonly text: string

  constructor(code: ConfigErrorCode | (string & {}), file: string, line: number | undefined, text: string) {
    super(`${line === undefined ? file : `${file}:${line}`}: ${text}`)
    this.name = 'ConfigError'
    this.code = code
    this.file = file
    this.line = line
    this.text = text
  }
}
