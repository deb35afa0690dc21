/**
 * Durable file hand-off shared by the file-writing queue plugins (maildir, quarantine):
 * stream a message into a temporary file, fsync it, rename it into place, fsync the target
 * directory. Only after the directory fsync is the rename on disk, so only then may the
 * server answer 250 (a crash before that may lose the file; the client then retries).
 * Does not create the final directory layout policy; callers say where files go.
 */
import { chmod, open, rename, unlink } from 'node:fs/promises'
import { hostname } from 'node:os'
import { dirname, relative, sep } from 'node:path'
import type { Readable } from 'node:stream'
import { makeDirectories } from './make-directories.ts'

/** Creates `dir` and missing parents with `mode` exactly (not reduced by the umask). */
export async function ensureDir(dir: string, mode: number): Promise<void> {
  const created = await makeDirectories(dir, mode)
  // mkdir's mode is masked by the umask; set the created directories' mode explicitly.
  for (const d of created) await chmod(d, mode)
  // A new directory's own entry must be on disk too before anything in it counts as delivered.
  for (const d of created) await syncDir(dirname(d))
}

/** Streams `source` into `tmpPath` (created exclusively) and fsyncs it. Removes the file on failure. */
export async function writeSynced(
  tmpPath: string,
  source: Readable,
  mode: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const fh = await open(tmpPath, 'wx', mode)
  try {
    await fh.chmod(mode)
    // One awaited write per chunk: backpressure without a stream pipeline, and an abort stops it.
    for await (const chunk of source) {
      signal?.throwIfAborted()
      const buf = chunk as Buffer
      let off = 0
      while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten
    }
    await fh.sync()
    await fh.close()
  } catch (e) {
    source.destroy()
    await fh.close().catch(() => {})
    await unlink(tmpPath).catch(() => {})
    throw e
  }
}

/** fsync of a directory, which makes a rename into it durable (POSIX; ext4, xfs, tmpfs). */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Renames a synced temporary file into place and fsyncs the target directory. */
export async function publish(tmpPath: string, finalPath: string): Promise<void> {
  await rename(tmpPath, finalPath)
  await syncDir(dirname(finalPath))
}

/** True when `child` is strictly inside `parent` (both already resolved). */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child)
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !rel.startsWith(sep)
}

/** This host's name for Maildir unique names: `/` and `:` are escaped as the maildir spec says. */
export function maildirHostname(name: string = hostname()): string {
  return (name === '' ? 'localhost' : name).replace(/\//g, '\\057').replace(/:/g, '\\072')
}

// Process-wide on purpose: two plugin instances in one process share the pid, so they must not
// share a (time, pid, counter) triple either.
let deliveries = 0

/**
 * A Maildir unique name (https://cr.yp.to/proto/maildir.html): `<sec>.M<usec>P<pid>Q<n>.<host>`.
 * @example maildirUniqueName(1700000000123.456, 'mx.example') // '1700000000.M123456P4242Q1.mx.example'
 */
export function maildirUniqueName(nowMs: number = performance.timeOrigin + performance.now(), host?: string): string {
  const sec = Math.floor(nowMs / 1000)
  const usec = Math.floor((nowMs - sec * 1000) * 1000)
  deliveries = (deliveries + 1) % Number.MAX_SAFE_INTEGER
  return `${sec}.M${usec}P${process.pid}Q${deliveries}.${host ?? maildirHostname()}`
}
