/**
 * Reading qpsmtpd's plugin databases (greylisting, karma) for the import commands, in the two
 * layouts qpsmtpd writes:
 *
 * - a DBM file (`greylist.dbm`, `karma.dbm`), tied through Perl's AnyDBM_File with qpsmtpd's
 *   own module order (DB_File, GDBM_File, NDBM_File, SDBM_File, ODBM_File), so whatever wrote
 *   the file reads it back. The machine that ran qpsmtpd has Perl and that module; `perl` runs
 *   as an argument vector, with the file as an argument, and prints each pair in hex;
 * - Redis (qpsmtpd 1.0 `Qpsmtpd::DB::Redis`): database 0 holds the hash `smtpd_stores` from a
 *   store's name (`greylist`, `karma`) to the database number that holds its keys.
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { createClient } from '@redis/client'

export interface DbEntry {
  readonly key: string
  readonly value: string
}

/** The database cannot be read (no such file, not a DBM file, no Perl, Redis unreachable). */
export class QpsmtpdDbError extends Error {}

const dumpScript = `
use strict; use warnings; use Fcntl;
BEGIN { @AnyDBM_File::ISA = qw(DB_File GDBM_File NDBM_File SDBM_File ODBM_File) }
use AnyDBM_File;
my $path = shift;
tie(my %db, 'AnyDBM_File', $path, O_RDONLY, 0) or die "cannot open $path: $!\\n";
while (my ($k, $v) = each %db) { print unpack('H*', $k), ' ', unpack('H*', defined $v ? $v : ''), "\\n" }
`

/** Every pair of a DBM file qpsmtpd wrote (`perl` is looked up in PATH unless given). */
export async function* readDbmFile(file: string, perl = 'perl'): AsyncIterable<DbEntry> {
  const child = spawn(perl, ['-e', dumpScript, file], { stdio: ['ignore', 'pipe', 'pipe'], shell: false })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d
  })
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', (e) => reject(new QpsmtpdDbError(`${perl}: ${e.message}`)))
    child.once('close', (code) => resolve(code))
  })
  exited.catch(() => undefined)
  try {
    for await (const line of createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY })) {
      const m = /^([0-9a-f]*) ([0-9a-f]*)$/.exec(line)
      if (!m) continue
      yield {
        key: Buffer.from(m[1] as string, 'hex').toString('latin1'),
        value: Buffer.from(m[2] as string, 'hex').toString('latin1'),
      }
    }
    const code = await exited
    if (code !== 0) throw new QpsmtpdDbError(`${file}: ${stderr.trim() || `perl exited with ${code}`}`)
  } finally {
    if (child.exitCode === null) child.kill()
  }
}

/**
 * Every key and value of the store `name` in a qpsmtpd Redis (`redis://[:password@]host[:port]`;
 * a database number in the URL is ignored: qpsmtpd's index lives in database 0).
 */
export async function* readQpsmtpdRedis(url: string, name: string): AsyncIterable<DbEntry> {
  const client = createClient({ url, socket: { connectTimeout: 5000, reconnectStrategy: false } })
  client.on('error', () => undefined)
  try {
    try {
      await client.connect()
    } catch (e) {
      throw new QpsmtpdDbError(`${url.replace(/:[^:@/]*@/, ':***@')}: ${(e as Error).message}`)
    }
    await client.select(0)
    const index = (await client.hGetAll('smtpd_stores'))[name]
    if (index === undefined || !/^\d{1,3}$/.test(index))
      throw new QpsmtpdDbError(`no qpsmtpd store "${name}" in smtpd_stores of database 0`)
    await client.select(Number(index))
    for await (const keys of client.scanIterator({ COUNT: 500 })) {
      if (keys.length === 0) continue
      const values = await client.mGet(keys)
      for (const [i, key] of keys.entries()) {
        const value = values[i]
        if (typeof value === 'string') yield { key, value }
      }
    }
  } finally {
    if (client.isOpen) await client.close()
  }
}
