/**
 * Read access to qpsmtpd-style configuration for plugins: the `config` hooks of plugins
 * answer first (qpsmtpd's config hook), then the flat files of the configuration directory.
 */

export interface ConfigLine {
  readonly text: string
  readonly file: string
  readonly line: number
}

/** Where configuration lines come from: a directory (config/config-dir.ts) or an object in tests. */
export interface ConfigSource {
  lines(key: string): readonly ConfigLine[] | undefined
  /** The file a key would be read from, for messages and for plugins that need a path. */
  path(key: string): string | undefined
}

export interface ConfigView {
  /** Lines of a config file (comments and blank lines removed, `$include` expanded); [] when absent. */
  lines(key: string): readonly string[]
  /** The same lines with file and line number, for error messages. */
  located(key: string): readonly ConfigLine[]
  /** The first line, or undefined. */
  value(key: string): string | undefined
  has(key: string): boolean
  path(key: string): string | undefined
  /**
   * Per-user configuration (qpsmtpd `$rcpt->config(key)`): the `userConfig` hooks answer first,
   * then the global value as `lines(key)` gives it.
   */
  forUser(address: string, key: string): readonly string[]
}

export type ConfigHook = (key: string) => readonly string[] | undefined
export type UserConfigHook = (address: string, key: string) => readonly string[] | undefined

export function createConfigView(
  source: ConfigSource,
  hooks: () => readonly ConfigHook[],
  userHooks: () => readonly UserConfigHook[] = () => [],
): ConfigView {
  const fromHooks = (key: string): readonly ConfigLine[] | undefined => {
    for (const hook of hooks()) {
      const answer = hook(key)
      if (answer !== undefined) return answer.map((text, i) => ({ text, file: `config hook (${key})`, line: i + 1 }))
    }
    return undefined
  }
  const located = (key: string): readonly ConfigLine[] => fromHooks(key) ?? source.lines(key) ?? []
  return {
    located,
    lines: (key) => located(key).map((l) => l.text),
    value: (key) => located(key)[0]?.text,
    has: (key) => located(key).length > 0,
    path: (key) => source.path(key),
    forUser(address, key) {
      for (const hook of userHooks()) {
        const answer = hook(address, key)
        if (answer !== undefined) return answer
      }
      return located(key).map((l) => l.text)
    },
  }
}

/** A configuration given as an object: `{ me: 'mx.example', rcpthosts: ['example.com'] }`. */
export function objectConfigSource(values: Readonly<Record<string, string | readonly string[]>>): ConfigSource {
  return {
    lines(key) {
      const v = values[key]
      if (v === undefined) return undefined
      const list = typeof v === 'string' ? v.split('\n') : v
      return list
        .map((text, i) => ({ text: text.trim(), file: `<config ${key}>`, line: i + 1 }))
        .filter((l) => l.text !== '' && !l.text.startsWith('#'))
    },
    path: () => undefined,
  }
}
