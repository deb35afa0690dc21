/**
 * Read access to qpsmtpd-style configuration for plugins: the `config` hooks of plugins
 * answer first (qpsmtpd's config hook), then the flat files of the configuration directory.
 * `live(key, parse)` gives a list file that takes effect when edited (live-config.ts).
 */

import type { ConfigLine } from '../config/config-dir.ts'
import type { ConfigRead, ConfigSource } from '../config/config-source.ts'
import { type LiveConfig, liveConfig } from './live-config.ts'
import { createLogger, type Logger } from './logger.ts'

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
  /**
   * A list file that takes effect when edited, without SIGHUP: parsed now (a throw stops the
   * start, so throw ConfigErrors at file:line), then again whenever a file behind it changes,
   * checked at most once a second when `current()` is called. A new version that does not
   * parse is logged and the previous value stays.
   *
   * @example
   *   const relay = config.live('relayclients', parseCidrList)
   *   // in a hook: relay.current().contains(ip)
   */
  live<T>(key: string, parse: (lines: readonly ConfigLine[]) => T): LiveConfig<T>
}

export type ConfigHook = (key: string) => readonly string[] | undefined
export type UserConfigHook = (address: string, key: string) => readonly string[] | undefined

export function createConfigView(
  source: ConfigSource,
  hooks: () => readonly ConfigHook[],
  userHooks: () => readonly UserConfigHook[] = () => [],
  log: Logger = createLogger(() => {}, 0),
): ConfigView {
  const fromHooks = (key: string): readonly ConfigLine[] | undefined => {
    for (const hook of hooks()) {
      const answer = hook(key)
      if (answer !== undefined) return answer.map((text, i) => ({ text, file: `config hook (${key})`, line: i + 1 }))
    }
    return undefined
  }
  const located = (key: string): readonly ConfigLine[] => fromHooks(key) ?? source.lines(key) ?? []
  const read = (key: string): ConfigRead => {
    // A config hook's answer is taken as it is at start-up: there is no file to watch.
    const hooked = fromHooks(key)
    if (hooked !== undefined) return { lines: hooked, watch: [] }
    return source.reread?.(key) ?? { lines: source.lines(key) ?? [], watch: [] }
  }
  return {
    live: (key, parse) => liveConfig({ name: `config ${source.path(key) ?? key}`, read: () => read(key), parse, log }),
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
