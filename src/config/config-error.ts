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

/**
 * Every problem of one configuration, so that an operator fixes them all in one round: the
 * message is one `file:line: text` per line; `file`, `line` and `code` are the first one's.
 */
export class ConfigErrors extends ConfigError {
  readonly errors: readonly ConfigError[]

  constructor(errors: readonly ConfigError[]) {
    const first = errors[0]
    if (first === undefined) throw new Error('ConfigErrors needs at least one error')
    super(first.code, first.file, first.line, first.text)
    this.name = 'ConfigErrors'
    this.errors = errors
    this.message = errors.map((e) => e.message).join('\n')
  }
}

/** The errors inside `e`: its list for ConfigErrors, itself for a ConfigError, undefined otherwise. */
export function configErrorsIn(e: unknown): readonly ConfigError[] | undefined {
  if (e instanceof ConfigErrors) return e.errors
  if (e instanceof ConfigError) return [e]
  return undefined
}

/**
 * One error as it is, several as ConfigErrors: in file order (files as first named, lines
 * ascending), each message once (a file read twice reports its problem twice).
 */
export function combineConfigErrors(errors: readonly ConfigError[]): ConfigError {
  const seen = new Set<string>()
  const unique = errors.filter((e) => !seen.has(e.message) && seen.add(e.message))
  const fileOrder = new Map<string, number>()
  for (const e of unique) if (!fileOrder.has(e.file)) fileOrder.set(e.file, fileOrder.size)
  const rank = (e: ConfigError) => fileOrder.get(e.file) ?? 0
  const sorted = unique.sort((a, b) => rank(a) - rank(b) || (a.line ?? 0) - (b.line ?? 0))
  return sorted.length === 1 ? (sorted[0] as ConfigError) : new ConfigErrors(sorted)
}

/** Runs `f`; a ConfigError it throws is added to `problems` (anything else propagates). */
export function collecting<T>(problems: ConfigError[], f: () => T): T | undefined {
  try {
    return f()
  } catch (e) {
    const found = configErrorsIn(e)
    if (found === undefined) throw e
    problems.push(...found)
    return undefined
  }
}
