/**
 * Opening the embedded store's SQLite file: WAL (the worker processes of one machine share
 * it), a busy timeout, a page-count cap that bounds the file, and a check at start.
 *
 * The store holds soft state (greylisting triplets, karma, counters: losing it delays or
 * forgets, it never loses mail), so a qtsmtpd store file that fails SQLite's quick_check is
 * moved aside to `<file>.corrupt-<time>` and a new one is made. A file that is not an SQLite
 * database, or is another program's database, is never touched: that is an error naming it.
 */
import { closeSync, openSync, readSync, renameSync, statSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'

/** `PRAGMA application_id` of a qtsmtpd store ("qtsd"), so a foreign database is refused. */
export const applicationId = 0x71747364
const formatVersion = 1
const sqliteMagic = 'SQLite format 3\0'

export interface SqliteFileOptions {
  /** How long an operation waits for another process's write lock (SQLite busy_timeout). */
  readonly busyTimeoutMs: number
  /** The database file's size cap in bytes (WAL and shared-memory files come on top). */
  readonly maxBytes: number
  /** Told when a corrupt file was moved aside. */
  readonly onWarning: (message: string) => void
}

/** Why a store file cannot be used; the message names the file. */
export class StoreFileError extends Error {
  readonly code = 'SMTPD_ERR_STORE_FILE'
  readonly file: string

  constructor(file: string, text: string, options?: { cause?: unknown }) {
    super(`${file}: ${text}`, options)
    this.name = 'StoreFileError'
    this.file = file
  }
}

export function openSqliteFile(file: string, opts: SqliteFileOptions): DatabaseSync {
  refuseForeignFile(file)
  const before = identity(file)
  let db = connect(file, opts)
  const problem = checkFile(db)
  if (problem === 'foreign') {
    db.close()
    throw new StoreFileError(file, 'an SQLite database of another program, not a qtsmtpd store: refusing to use it')
  }
  if (problem === 'newer') {
    db.close()
    throw new StoreFileError(file, `a qtsmtpd store of a newer format than ${formatVersion}: upgrade qtsmtpd`)
  }
  if (problem !== undefined) {
    db.close()
    const aside = moveAside(file, before)
    opts.onWarning(`${file}: corrupt store (${problem.replace(/\s+/g, ' ')}); moved to ${aside} and started a new one`)
    db = connect(file, opts)
  }
  initialise(db, file)
  return db
}

/** Only a file that starts like an SQLite database (or is empty or absent) may be opened. */
function refuseForeignFile(file: string): void {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return
    throw new StoreFileError(file, `cannot open: ${(e as Error).message}`, { cause: e })
  }
  try {
    const head = Buffer.alloc(sqliteMagic.length)
    const n = readSync(fd, head, 0, head.length, 0)
    if (n > 0 && head.toString('latin1', 0, n) !== sqliteMagic) {
      throw new StoreFileError(file, 'not an SQLite database: refusing to use it (move it away or name another file)')
    }
  } finally {
    closeSync(fd)
  }
}

function connect(file: string, opts: SqliteFileOptions): DatabaseSync {
  try {
    const db = new DatabaseSync(file, { timeout: opts.busyTimeoutMs })
    const pageSize = Number((db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size)
    db.exec(`PRAGMA max_page_count = ${Math.max(16, Math.floor(opts.maxBytes / pageSize))}`)
    // WAL bounded after each checkpoint; NORMAL sync is safe in WAL mode and the data is soft.
    db.exec('PRAGMA journal_size_limit = 67108864; PRAGMA synchronous = NORMAL')
    return db
  } catch (e) {
    throw new StoreFileError(file, `cannot open: ${(e as Error).message}`, { cause: e })
  }
}

type Problem = 'foreign' | 'newer' | string

function checkFile(db: DatabaseSync): Problem | undefined {
  try {
    const check = db.prepare('PRAGMA quick_check(1)').get() as { quick_check: string } | undefined
    if (check?.quick_check !== 'ok') return check?.quick_check ?? 'quick_check failed'
    const id = Number((db.prepare('PRAGMA application_id').get() as { application_id: number }).application_id)
    if (id === applicationId) {
      const version = Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version)
      return version > formatVersion ? 'newer' : undefined
    }
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number }
    return id !== 0 || tables.n > 0 ? 'foreign' : undefined
  } catch (e) {
    return (e as Error).message
  }
}

function initialise(db: DatabaseSync, file: string): void {
  try {
    // auto_vacuum must be chosen before the first table exists; it lets sweeps shrink the file.
    db.exec('PRAGMA auto_vacuum = INCREMENTAL')
    db.exec('PRAGMA journal_mode = WAL')
    db.exec('BEGIN IMMEDIATE')
    db.exec(`
      CREATE TABLE IF NOT EXISTS store (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL,
        expires_at INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS store_expiry ON store (expires_at) WHERE expires_at IS NOT NULL;
      PRAGMA application_id = ${applicationId};
      PRAGMA user_version = ${formatVersion};
    `)
    db.exec('COMMIT')
  } catch (e) {
    if (db.isTransaction) db.exec('ROLLBACK')
    db.close()
    throw new StoreFileError(file, `cannot set up the store: ${(e as Error).message}`, { cause: e })
  }
}

interface FileIdentity {
  readonly dev: number
  readonly ino: number
}

function identity(file: string): FileIdentity | undefined {
  try {
    const s = statSync(file)
    return { dev: s.dev, ino: s.ino }
  } catch {
    return undefined
  }
}

/**
 * Renames the file and its WAL and shared-memory files. Only if the path still names the file
 * we checked: another worker that got there first has already put a new store in its place.
 */
function moveAside(file: string, checked: FileIdentity | undefined): string {
  const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`
  const now = identity(file)
  if (checked === undefined || now === undefined || now.dev !== checked.dev || now.ino !== checked.ino) return aside
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      renameSync(file + suffix, aside + suffix)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new StoreFileError(file, `corrupt, and cannot be moved aside: ${(e as Error).message}`, { cause: e })
      }
    }
  }
  return aside
}
