/**
 * Config files that take effect when edited, without SIGHUP, as qpsmtpd re-read them: a
 * plugin asks for the current value on each use; at most once per interval (1 s) the files
 * behind it are stat()ed, and only a changed file (mtime, ctime, size or inode; a file created
 * or removed) is read and parsed again. A file that no longer parses (a bad pattern, a
 * malformed line) leaves the previous value in force and is logged with its file:line; the
 * next edit is tried again. Nothing runs between uses: no timers, no watchers.
 */
import { readFileSync, statSync } from 'node:fs'
import type { ConfigLine } from '../config/config-dir.ts'
import { ConfigError } from '../config/config-error.ts'
import type { ConfigRead } from '../config/config-source.ts'
import type { Logger } from './logger.ts'

/** A parsed config file that follows edits; `current()` is cheap. */
export interface LiveConfig<T> {
  current(): T
}

/** How often files are checked at most: qpsmtpd re-read on every use; once a second costs a few stat calls. */
export const liveConfigIntervalMs = 1000

export interface LiveConfigOptions<T> {
  /** For log lines: the config key or file. */
  readonly name: string
  /** Reads the lines again (uncached); throws a ConfigError when the file cannot be read. */
  readonly read: () => ConfigRead
  /** Turns lines into the value; throws (a ConfigError at file:line) when they are wrong. */
  readonly parse: (lines: readonly ConfigLine[]) => T
  readonly log: Logger
  readonly intervalMs?: number
  readonly now?: () => number
}

const stampOf = (files: readonly string[]): string =>
  files
    .map((f) => {
      try {
        const st = statSync(f, { throwIfNoEntry: false, bigint: true })
        return st === undefined ? '-' : `${st.mtimeNs}:${st.ctimeNs}:${st.size}:${st.ino}`
      } catch {
        return '?'
      }
    })
    .join('|')

/**
 * Reads and parses once now (an error here is thrown: it stops the start with file:line),
 * then follows edits as described above.
 */
export function liveConfig<T>(opts: LiveConfigOptions<T>): LiveConfig<T> {
  const interval = opts.intervalMs ?? liveConfigIntervalMs
  const now = opts.now ?? Date.now
  const first = opts.read()
  let value = opts.parse(first.lines)
  let watch = first.watch
  let stamp = stampOf(watch)
  let checkedAt = now()

  const refresh = (): void => {
    const seen = stampOf(watch)
    if (seen === stamp) return
    // Remembered whatever comes of it, so a broken file is reported once per edit, not once a second.
    stamp = seen
    let read: ConfigRead
    try {
      read = opts.read()
      watch = read.watch
      stamp = stampOf(watch)
      value = opts.parse(read.lines)
    } catch (e) {
      opts.log.warn(
        `${opts.name} changed but is not used, the previous contents stay in force: ${(e as Error).message}`,
      )
      return
    }
    opts.log.info(`${opts.name} reloaded (${read.lines.length} lines)`)
  }

  return {
    current() {
      const t = now()
      if (t - checkedAt >= interval) {
        checkedAt = t
        refresh()
      }
      return value
    },
  }
}

/** A value that never changes, for configurations given in code. */
export const fixedConfig = <T>(value: T): LiveConfig<T> => ({ current: () => value })

/**
 * A plain file named by a plugin argument (rcpt_map's map), as a live config: lines trimmed,
 * blank and `#` lines dropped, no `$include`. A file that cannot be read throws a ConfigError
 * (at start-up it stops the start; later the previous contents stay).
 */
export function liveFile<T>(
  path: string,
  parse: (lines: readonly ConfigLine[]) => T,
  log: Logger,
  opts: Pick<LiveConfigOptions<T>, 'intervalMs' | 'now'> = {},
): LiveConfig<T> {
  const read = (): ConfigRead => {
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? String(e)
      throw new ConfigError('SMTPD_ERR_CONFIG_READ', path, undefined, `cannot read: ${why}`)
    }
    const lines = text
      .split('\n')
      .map((raw, i) => ({ text: raw.trim(), file: path, line: i + 1 }))
      .filter((l) => l.text !== '' && !l.text.startsWith('#'))
    return { lines, watch: [path] }
  }
  return liveConfig({ name: path, read, parse, log, ...opts })
}
