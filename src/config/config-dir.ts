/**
 * ConfigDir: reads a qpsmtpd-layout config directory (flat files, one value per line).
 *
 * A key is read from the FIRST directory that has it (primary dir, then fallbacks such as
 * qmail's /var/qmail/control). Blank and `#` lines are dropped, lines are trimmed, and
 * `$include <file|dir>` is expanded recursively with cycle detection (qpsmtpd Config.pm).
 * Reads are synchronous and cached: this runs at start-up and on reload, which opens a new
 * ConfigDir. It does not do cdb maps or config hooks.
 * Security: keys may name subdirectories but never leave the config directory (`..` is refused).
 */
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { ConfigError, ConfigErrorCode, combineConfigErrors } from './config-error.ts'

/** One meaningful line of a config file, with where it came from (after `$include` expansion). */
export interface ConfigLine {
  readonly text: string
  readonly file: string
  readonly line: number
}

const INCLUDE = /^\$include(?:\s|$)/

/**
 * What a ConfigDir has read, as data: a ConfigDir opened with it answers those keys from it,
 * not from the files, so that a replacement worker builds the configuration the others run
 * even when the files were changed since (and a reload refused them).
 */
export interface ConfigSnapshot {
  /** Key, the file it was read from, its lines; null path and lines: the key has no file. */
  readonly keys: readonly (readonly [key: string, path: string | null, lines: readonly ConfigLine[] | null])[]
  readonly files: readonly string[]
}

export class ConfigDir {
  /** The directories searched, primary first; fallbacks that did not exist at open() are left out. */
  readonly dirs: readonly string[]
  readonly #cache = new Map<string, readonly ConfigLine[] | undefined>()
  /** The file each cached key was read from (undefined: none had it). */
  readonly #paths = new Map<string, string | undefined>()
  readonly #files = new Set<string>()

  private constructor(dirs: readonly string[], snapshot?: ConfigSnapshot) {
    this.dirs = dirs
    for (const [key, path, lines] of snapshot?.keys ?? []) {
      this.#cache.set(key, lines ?? undefined)
      this.#paths.set(key, path ?? undefined)
    }
    for (const f of snapshot?.files ?? []) this.#files.add(f)
  }

  /**
   * Opens a config directory with fallbacks. The first directory must exist; missing fallbacks are skipped.
   *
   * @example
   * const config = await ConfigDir.open(['./config', '/var/qmail/control'])
   * const me = config.value('me')?.text ?? os.hostname()
   */
  static async open(dirs: readonly string[], snapshot?: ConfigSnapshot): Promise<ConfigDir> {
    const [primary, ...fallbacks] = dirs.map((d) => resolve(d))
    if (primary === undefined)
      throw new ConfigError(ConfigErrorCode.Dir, '<config>', undefined, 'no config directory given')
    const isDir = async (d: string) => (await stat(d).catch(() => undefined))?.isDirectory() === true
    if (!(await isDir(primary))) {
      throw new ConfigError(
        ConfigErrorCode.Dir,
        primary,
        undefined,
        'config directory does not exist or is not a directory',
      )
    }
    const found = [primary]
    for (const d of fallbacks) if (await isDir(d)) found.push(d)
    return new ConfigDir(found, snapshot)
  }

  /** The file a key would be read from, or undefined when no directory has it. */
  path(key: string): string | undefined {
    checkKey(key, this.dirs[0] ?? '<config>')
    if (this.#paths.has(key)) return this.#paths.get(key)
    for (const dir of this.dirs) {
      const p = join(dir, key)
      if (isFile(p)) return p
    }
    return undefined
  }

  has(key: string): boolean {
    return this.path(key) !== undefined
  }

  /** The meaningful lines of a key, `$include`s expanded; undefined when the file is missing. */
  lines(key: string): readonly ConfigLine[] | undefined {
    const problems: ConfigError[] = []
    const result = this.linesCollecting(key, problems)
    if (problems.length > 0) throw combineConfigErrors(problems)
    return result
  }

  /**
   * As `lines`, but a bad `$include` is added to `problems` and skipped, so that the rest of
   * the file is still read and every bad line is reported. Only complete reads are cached.
   */
  linesCollecting(key: string, problems: ConfigError[]): readonly ConfigLine[] | undefined {
    if (this.#cache.has(key)) return this.#cache.get(key)
    const p = this.path(key)
    if (p === undefined) {
      this.#cache.set(key, undefined)
      this.#paths.set(key, undefined)
      return undefined
    }
    const out: ConfigLine[] = []
    const found: ConfigError[] = []
    try {
      this.#expandFile(p, [], out, found)
    } catch (e) {
      // The file itself cannot be read: nothing of it counts.
      if (!(e instanceof ConfigError)) throw e
      problems.push(e)
      return undefined
    }
    const result = Object.freeze(out)
    if (found.length === 0) {
      this.#cache.set(key, result)
      this.#paths.set(key, p)
    }
    problems.push(...found)
    return result
  }

  /**
   * The key read again from disk, uncached, with the paths to watch for a change: the key in
   * every directory searched (a file created in a preferred directory counts) and each
   * `$include`d file. Problems are thrown together, as `lines` does. For files that take
   * effect when edited (host/live-config.ts).
   */
  reread(key: string): { readonly lines: readonly ConfigLine[]; readonly watch: readonly string[] } {
    checkKey(key, this.dirs[0] ?? '<config>')
    const watch = this.dirs.map((d) => join(d, key))
    const p = this.path(key)
    if (p === undefined) return { lines: [], watch }
    const out: ConfigLine[] = []
    const problems: ConfigError[] = []
    const read: string[] = []
    this.#expandFile(p, [], out, problems, undefined, read)
    if (problems.length > 0) throw combineConfigErrors(problems)
    return { lines: Object.freeze(out), watch: [...new Set([...watch, ...read])] }
  }

  /** The first meaningful line of a key (qpsmtpd's scalar `config('me')`). */
  value(key: string): ConfigLine | undefined {
    return this.lines(key)?.[0]
  }

  /** Every file read so far, includes too, in the order first read (for reload diagnostics). */
  files(): string[] {
    return [...this.#files]
  }

  /** Every key read so far (and the files), for a ConfigDir opened with it to answer alike. */
  snapshot(): ConfigSnapshot {
    return {
      keys: [...this.#cache].map(([key, lines]) => [key, this.#paths.get(key) ?? null, lines ?? null] as const),
      files: this.files(),
    }
  }

  // `stack` holds the real paths of the files being expanded, so a diamond (two files including
  // the same third) is fine and only a true cycle is refused. qpsmtpd's $visited list never shrank.
  #expandFile(
    file: string,
    stack: readonly string[],
    out: ConfigLine[],
    problems: ConfigError[],
    from?: ConfigLine,
    read?: string[],
  ): void {
    let real: string
    let content: string
    try {
      real = realpathSync(file)
      content = readFileSync(real, 'utf8')
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? String(err)
      if (from === undefined) throw new ConfigError(ConfigErrorCode.Read, file, undefined, `cannot read: ${why}`)
      throw new ConfigError(ConfigErrorCode.IncludeMissing, from.file, from.line, `cannot $include ${file}: ${why}`)
    }
    if (stack.includes(real)) {
      const chain = [...stack.slice(stack.indexOf(real)), real].join(' -> ')
      // from is always set here: the first file of a chain cannot already be on the stack
      throw new ConfigError(ConfigErrorCode.IncludeCycle, from?.file ?? file, from?.line, `$include cycle: ${chain}`)
    }
    this.#files.add(file)
    read?.push(file)
    const inner = [...stack, real]
    const raw = content.split('\n')
    for (let i = 0; i < raw.length; i++) {
      const text = (raw[i] ?? '').trim()
      if (text === '' || text.startsWith('#')) continue
      const here: ConfigLine = Object.freeze({ text, file, line: i + 1 })
      if (!INCLUDE.test(text)) {
        out.push(here)
        continue
      }
      const args = text.split(/\s+/).slice(1)
      if (args.length !== 1 || args[0] === undefined) {
        problems.push(
          new ConfigError(ConfigErrorCode.Syntax, file, i + 1, '$include takes exactly one file or directory'),
        )
        continue
      }
      // Relative to the including file, so an included file in a subdirectory can include its siblings.
      const target = isAbsolute(args[0]) ? args[0] : join(dirname(file), args[0])
      try {
        this.#expandTarget(target, inner, out, problems, here, read)
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e
        problems.push(e)
      }
    }
  }

  #expandTarget(
    target: string,
    stack: readonly string[],
    out: ConfigLine[],
    problems: ConfigError[],
    from: ConfigLine,
    read?: string[],
  ): void {
    const st = statSync(target, { throwIfNoEntry: false })
    if (st?.isDirectory() !== true) {
      this.#expandFile(target, stack, out, problems, from, read)
      return
    }
    // A file added to an included directory is a change too.
    read?.push(target)
    let names: string[]
    try {
      names = readdirSync(target).sort()
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? String(err)
      throw new ConfigError(ConfigErrorCode.IncludeMissing, from.file, from.line, `cannot $include ${target}: ${why}`)
    }
    for (const name of names) {
      // Dotfiles and editor backups (`foo~`) are never configuration.
      if (name.startsWith('.') || name.endsWith('~')) continue
      const p = join(target, name)
      if (isFile(p)) this.#expandFile(p, stack, out, problems, from, read)
    }
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p, { throwIfNoEntry: false })?.isFile() === true
  } catch {
    return false // ENOTDIR, EACCES on a parent, ELOOP: the key is not there
  }
}

/** Keys are relative paths of plain segments: `me`, `dkim/example.com/selector`. */
function checkKey(key: string, dir: string): void {
  const bad = (why: string) =>
    new ConfigError(ConfigErrorCode.Key, dir, undefined, `bad config key ${JSON.stringify(key)}: ${why}`)
  if (key === '' || key.includes('\0')) throw bad('empty or contains NUL')
  if (key.startsWith('/') || isAbsolute(key)) throw bad('must be relative')
  for (const seg of key.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw bad('empty, "." or ".." path segment')
  }
}
