/**
 * `mkdir -p` with a bound: creates a directory and its missing parents one level at a time.
 *
 * Node's `mkdir(dir, { recursive: true })` never returns under /proc (mkdir there answers
 * ENOENT although the parent exists, and Node retries the parent forever at 100% CPU), so a
 * configured path such as `queue/maildir /proc/x` hung `--check`. Here every path component is
 * looked at once: the work is bounded by the path's depth, and a file system that refuses a
 * directory gives an error naming it.
 */
import { mkdir, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'

const code = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code

async function isDirectory(path: string): Promise<boolean | undefined> {
  try {
    return (await stat(path)).isDirectory()
  } catch (e) {
    if (code(e) === 'ENOENT') return undefined
    throw e
  }
}

/**
 * Creates `dir` and its missing parents with `mode` (reduced by the umask, as mkdir does).
 * Returns the directories it created, outermost first (empty when `dir` existed).
 */
export async function makeDirectories(dir: string, mode: number): Promise<string[]> {
  const missing: string[] = []
  let d = resolve(dir)
  for (;;) {
    const found = await isDirectory(d)
    if (found === false) throw new Error(`cannot create ${dir}: ${d} exists and is not a directory`)
    if (found === true) break
    missing.push(d)
    const parent = dirname(d)
    if (parent === d) break
    d = parent
  }
  missing.reverse()
  const created: string[] = []
  for (const m of missing) {
    try {
      await mkdir(m, { mode })
      created.push(m)
    } catch (e) {
      // Another process (a second worker) may have made it in the meantime.
      if (code(e) === 'EEXIST' && (await isDirectory(m)) === true) continue
      const why = code(e) ?? (e as Error).message
      const parentNote = code(e) === 'ENOENT' ? ` (the file system under ${dirname(m)} refuses new directories)` : ''
      throw new Error(`cannot create directory ${m}: ${why}${parentNote}`)
    }
  }
  return created
}
