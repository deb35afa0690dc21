/**
 * Where configuration lines come from, as the rest of the server reads them: a directory
 * (config-dir.ts) or, in tests and for embedded use, an object.
 */
import type { ConfigLine } from './config-dir.ts'

/** What one read found: the lines, and every file whose change should trigger a new read. */
export interface ConfigRead {
  readonly lines: readonly ConfigLine[]
  /** Paths to watch, present or not (a file created later counts as a change). */
  readonly watch: readonly string[]
}

/** Where configuration lines come from: a directory (config-dir.ts) or an object in tests. */
export interface ConfigSource {
  lines(key: string): readonly ConfigLine[] | undefined
  /** The file a key would be read from, for messages and for plugins that need a path. */
  path(key: string): string | undefined
  /**
   * Reads a key again, bypassing any cache, with every path whose change matters (the key in
   * each directory searched, `$include`d files). Sources whose contents never change leave it out.
   */
  reread?(key: string): ConfigRead
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
