/**
 * The message as a file, for a scanner that takes a path (`{file}` in its command line, or a
 * daemon such as Sophie that opens the file itself): written from the message stream into the
 * spool directory, removed after the scan. A daemon running as another user reads it through
 * its group, as with qpsmtpd: the file is readable by group and others exactly when the
 * directory lets them in (its group or other execute bit), never more.
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { chmod, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

export interface MessageFiles {
  /** The directory the file goes into (the spool directory). */
  readonly dir: string
}

export interface MessageFile {
  readonly path: string
  remove(): Promise<void>
}

/** qpsmtpd's set_permission: owner read/write, plus read for group/others the directory admits. */
async function modeFor(dir: string): Promise<number> {
  const m = (await stat(dir)).mode
  return 0o600 | (m & 0o010 ? 0o040 : 0) | (m & 0o001 ? 0o004 : 0)
}

export async function writeMessageFile(files: MessageFiles, message: Readable): Promise<MessageFile> {
  const path = join(files.dir, `scan-${process.pid}-${randomBytes(8).toString('hex')}.eml`)
  const remove = () => rm(path, { force: true })
  try {
    await pipeline(message, createWriteStream(path, { flags: 'wx', mode: 0o600 }))
    await chmod(path, await modeFor(files.dir))
  } catch (e) {
    await remove()
    throw e
  }
  return { path, remove }
}
