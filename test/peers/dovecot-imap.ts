/**
 * Dovecot's IMAP server as a mail reader for a Maildir that a test wrote: Debian's
 * /usr/lib/dovecot/imap runs pre-authenticated on stdin/stdout (as over ssh), with a private
 * config, opens the Maildir read-only (EXAMINE, so nothing moves from new/ to cur/) and fetches
 * every message. What it returns is what an IMAP mail client gets. Needs root: Dovecot refuses
 * to read mail as root, so the Maildir is given to `nobody` first (its parent directories must
 * let `nobody` through).
 */
import { execFile, spawn } from 'node:child_process'
import { chmod, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const NOBODY = 65534

export interface ImapMessage {
  /** RFC822.SIZE as Dovecot reports it. */
  readonly size: number
  /** BODY[]: the whole message as served over IMAP. */
  readonly body: Buffer
}

/** Every message in the Maildir's INBOX (new/ and cur/), in Dovecot's order. */
export async function readMaildirOverImap(maildir: string): Promise<ImapMessage[]> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-imap-'))
  try {
    await chmod(dir, 0o755)
    await run('chown', ['-R', `${NOBODY}:${NOBODY}`, maildir, dir])
    const conf = join(dir, 'dovecot.conf')
    await writeFile(
      conf,
      [
        `base_dir = ${dir}/run`,
        `state_dir = ${dir}/state`,
        `log_path = ${dir}/dovecot.log`,
        `mail_location = maildir:${maildir}:INDEX=${dir}/index:CONTROL=${dir}/control`,
        `mail_uid = ${NOBODY}`,
        `mail_gid = ${NOBODY}`,
        'first_valid_uid = 1',
        'ssl = no',
        '',
      ].join('\n'),
    )
    // Replies go to a file: as root, imap takes a socket (Node's 'pipe') on stdout for inetd and
    // refuses to run. Its stdin must be pollable, so that one is a pipe.
    const stdout = await open(join(dir, 'replies'), 'w')
    const stderr = await open(join(dir, 'errors'), 'w')
    let code: number | null
    try {
      const child = spawn('/usr/lib/dovecot/imap', ['-c', conf], {
        env: { USER: 'nobody', HOME: dir, PATH: process.env.PATH ?? '/usr/bin:/bin' },
        stdio: ['pipe', stdout.fd, stderr.fd],
        timeout: 30_000,
      })
      child.stdin?.on('error', () => {})
      child.stdin?.end('a EXAMINE INBOX\r\nb FETCH 1:* (RFC822.SIZE BODY.PEEK[])\r\nc LOGOUT\r\n')
      code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject)
        child.once('close', resolve)
      })
    } finally {
      await stdout.close()
      await stderr.close()
    }
    const text = await readFile(join(dir, 'replies'))
    if (code !== 0 || !text.includes('\r\nb OK ')) {
      const errors = await readFile(join(dir, 'errors'), 'utf8')
      throw new Error(`dovecot imap failed (exit ${code}): ${text}${errors}`)
    }
    return parseFetches(text)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** `* N FETCH (RFC822.SIZE S BODY[] {L}\r\n<L bytes>)` responses, literal bytes untouched. */
function parseFetches(text: Buffer): ImapMessage[] {
  const latin = text.toString('latin1')
  const re = /\* \d+ FETCH \(RFC822\.SIZE (\d+) BODY\[\] \{(\d+)\}\r\n/g
  const messages: ImapMessage[] = []
  for (let m = re.exec(latin); m !== null; m = re.exec(latin)) {
    const start = m.index + m[0].length
    const length = Number(m[2])
    messages.push({ size: Number(m[1]), body: text.subarray(start, start + length) })
    re.lastIndex = start + length
  }
  return messages
}
