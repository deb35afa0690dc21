/**
 * The files of content_log: a strftime pattern names one file per period (qpsmtpd's
 * `mail/%Y%m%d`: a file a day), and the files the pattern named before are found again by a
 * pattern made from it, so that only the newest `keep` stay. Conversions may stand in the file
 * name only: a date in a directory name would leave directories behind that nothing removes.
 */
import { readdir, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** A regular expression for the names `pattern`'s file name part gives (`%Y%m%d` → `^[^/]*…$`). */
export function namesOf(pattern: string): RegExp {
  const parts = basename(pattern).split(/(%.)/s)
  const source = parts
    .map((p) => (p === '%%' ? '%' : /^%.$/s.test(p) ? '[^/]*' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('')
  return new RegExp(`^${source}$`)
}

/** Throws when a conversion stands in the directory part of the pattern. */
export function checkPattern(pattern: string): void {
  if (/%(?!%)./s.test(dirname(pattern).replaceAll('%%', '')))
    throw new Error(
      `content_log_file ${pattern}: strftime conversions are allowed in the file name only (mail/%Y%m%d), so that old files can be found and removed`,
    )
}

/**
 * Removes the files of the pattern beyond the newest `keep` (by modification time, then name),
 * never `current`. Files another process removed first are no error. Resolves with the removed paths.
 */
export async function pruneOldFiles(pattern: string, keep: number, current: string): Promise<string[]> {
  const dir = dirname(pattern)
  const names = namesOf(pattern)
  const found: { path: string; mtimeMs: number }[] = []
  for (const name of await readdir(dir)) {
    if (!names.test(name)) continue
    const path = join(dir, name)
    const info = await stat(path).catch(() => undefined)
    if (info?.isFile()) found.push({ path, mtimeMs: info.mtimeMs })
  }
  found.sort((a, b) => b.mtimeMs - a.mtimeMs || (a.path < b.path ? 1 : a.path > b.path ? -1 : 0))
  const removed: string[] = []
  for (const old of found.filter((f) => f.path !== current).slice(Math.max(0, keep - 1))) {
    try {
      await unlink(old.path)
      removed.push(old.path)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
    }
  }
  return removed
}
