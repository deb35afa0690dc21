/**
 * The open log files of one file-writing logging plugin (logging/file, logging/apache): one
 * buffered WriteStream per path, never blocking the event loop. Past `maxBuffered` unwritten
 * bytes in a file, lines are dropped and counted, and a notice with the count is written when
 * the file drains. `reopen()` (SIGUSR1, after logrotate moved the files) ends every stream,
 * which flushes what was buffered into the moved file, and the next line opens the path anew.
 */
import { createWriteStream, constants as fsConstants, type WriteStream } from 'node:fs'
import { access, stat } from 'node:fs/promises'
import { dirname, sep } from 'node:path'

export interface LogFilesOptions {
  /** The plugin instance, for the one stderr line about a file that cannot be written. */
  readonly name: string
  readonly maxOpen?: number
  readonly maxBuffered?: number
  /** The line written before the next line once lines were dropped. */
  readonly droppedNotice: (count: number) => string
}

export class LogFiles {
  readonly #streams = new Map<string, WriteStream>() // insertion order = least recently used first
  readonly #failed = new Set<string>()
  readonly #opts: Required<LogFilesOptions>
  #dropped = 0

  constructor(opts: LogFilesOptions) {
    this.#opts = { maxOpen: 32, maxBuffered: 8 * 1024 * 1024, ...opts }
  }

  write(file: string, line: string): void {
    let s = this.#streams.get(file)
    if (s === undefined) s = this.#open(file)
    else {
      this.#streams.delete(file)
      this.#streams.set(file, s)
    }
    if (s.writableLength > this.#opts.maxBuffered) {
      this.#dropped++
      return
    }
    if (this.#dropped > 0) {
      s.write(this.#opts.droppedNotice(this.#dropped))
      this.#dropped = 0
    }
    s.write(line)
  }

  /** Finishes one file (a session's own file when the session ends, `reopen` per session). */
  end(file: string): void {
    this.#streams.get(file)?.end()
    this.#streams.delete(file)
  }

  reopen(): void {
    for (const file of [...this.#streams.keys()]) this.end(file)
  }

  async close(): Promise<void> {
    const ending = [...this.#streams.values()].map((s) => new Promise<void>((resolve) => s.end(() => resolve())))
    this.#streams.clear()
    await Promise.all(ending)
  }

  #open(file: string): WriteStream {
    while (this.#streams.size >= this.#opts.maxOpen) this.end(this.#streams.keys().next().value as string)
    const s = createWriteStream(file, { flags: 'a', mode: 0o640 })
    s.on('error', (err) => {
      // Not through the logger: that would come straight back here.
      if (!this.#failed.has(file)) process.stderr.write(`${this.#opts.name}: cannot write ${file}: ${err.message}\n`)
      this.#failed.add(file)
      if (this.#streams.get(file) === s) this.#streams.delete(file)
    })
    s.on('open', () => this.#failed.delete(file))
    this.#streams.set(file, s)
    return s
  }
}

/**
 * The log directory must exist and be writable now, not at the first write (which would only
 * reach stderr): a missing /var/log/qpsmtpd stops the start with the config line. It is not
 * created: its owner, group and mode are the package's or systemd's (`LogsDirectory=`) to set.
 * With conversions in the directory part, the fixed part before them is checked.
 */
export async function checkLogDirectory(pattern: string): Promise<void> {
  const parts = dirname(pattern).split(sep)
  const firstConversion = parts.findIndex((p) => p.includes('%'))
  const fixed = firstConversion < 0 ? dirname(pattern) : parts.slice(0, firstConversion).join(sep) || sep
  const info = await stat(fixed).catch(() => undefined)
  if (info === undefined)
    throw new Error(
      `log directory ${fixed} does not exist: create it, writable by the user qtsmtpd runs as ` +
        '(with systemd: LogsDirectory=)',
    )
  if (!info.isDirectory()) throw new Error(`log directory ${fixed} is not a directory`)
  if (firstConversion >= 0) return
  const who = `the user qtsmtpd runs as (uid ${process.getuid?.() ?? '?'})`
  const fileExists = !pattern.includes('%') && (await stat(pattern).catch(() => undefined)) !== undefined
  if (fileExists)
    await access(pattern, fsConstants.W_OK).catch(() => {
      throw new Error(`log file ${pattern} is not writable by ${who}`)
    })
  else
    await access(fixed, fsConstants.W_OK | fsConstants.X_OK).catch(() => {
      throw new Error(`log directory ${fixed} is not writable by ${who}`)
    })
}
