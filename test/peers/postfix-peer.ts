/**
 * A private Postfix for tests (Debian's postfix package): its own config, queue and data
 * directories in a temp dir, started with `postfix -c <dir> start` and stopped in `close()`.
 * No network listener at all: only the local cleanup socket and Postfix's internal services.
 * Every recipient is delivered by virtual(8) to one Maildir; header_checks reject or defer a
 * message whose Subject starts with `reject-me` (5.7.1) or `defer-me` (4.7.1) when cleanup filters it.
 */
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface PostfixPeer {
  readonly dir: string
  readonly cleanupSocket: string
  /** Delivered messages (bytes), oldest first. */
  messages(): Buffer[]
  /** Postfix's mail log. */
  log(): string
  /** Waits until `n` messages were delivered (bounded). */
  waitFor(n: number, timeoutMs?: number): Promise<Buffer[]>
  close(): void
}

const master = [
  'pickup unix n - n 60 1 pickup',
  'cleanup unix n - n - 0 cleanup',
  'qmgr unix n - n 300 1 qmgr',
  'rewrite unix - - n - - trivial-rewrite',
  'bounce unix - - n - 0 bounce',
  'defer unix - - n - 0 bounce',
  'trace unix - - n - 0 bounce',
  'verify unix - - n - 1 verify',
  'flush unix n - n 1000? 0 flush',
  'proxymap unix - - n - - proxymap',
  'showq unix n - n - - showq',
  'error unix - - n - - error',
  'retry unix - - n - - error',
  'discard unix - - n - - discard',
  'virtual unix - n n - - virtual',
  'anvil unix - - n - 1 anvil',
  'scache unix - - n - 1 scache',
  'postlog unix-dgram n - n - 1 postlogd',
]

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export function startPostfix(): PostfixPeer {
  const dir = mkdtempSync(join(tmpdir(), 'qt-postfix-'))
  chmodSync(dir, 0o755) // Postfix's daemons run as the postfix user and must reach data/ and mail/
  const uid = Number(execFileSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', 'postfix'], { encoding: 'utf8' }).trim())
  for (const d of ['conf', 'spool', 'data', 'mail']) mkdirSync(join(dir, d))
  chownSync(join(dir, 'data'), uid, gid)
  chownSync(join(dir, 'mail'), uid, gid)
  writeFileSync(
    join(dir, 'conf', 'header_checks'),
    '/^Subject: reject-me/ REJECT no thanks\n/^Subject: defer-me/ REJECT 4.7.1 later please\n',
  )
  writeFileSync(
    join(dir, 'conf', 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${dir}/spool`,
      `data_directory = ${dir}/data`,
      'mail_owner = postfix',
      'setgid_group = postdrop',
      'myhostname = postfix.test',
      'mydestination =',
      'inet_interfaces = loopback-only',
      'inet_protocols = ipv4',
      `maillog_file = ${dir}/maillog`,
      `maillog_file_prefixes = ${dir}`,
      'virtual_mailbox_domains = static:all',
      `virtual_mailbox_base = ${dir}/mail`,
      'virtual_mailbox_maps = static:box/',
      `virtual_uid_maps = static:${uid}`,
      `virtual_gid_maps = static:${gid}`,
      'virtual_minimum_uid = 1',
      'alias_maps =',
      'alias_database =',
      'smtputf8_enable = yes',
      `header_checks = regexp:${dir}/conf/header_checks`,
      'message_size_limit = 1000000',
      '',
    ].join('\n'),
  )
  writeFileSync(join(dir, 'conf', 'master.cf'), `${master.join('\n')}\n`)
  execFileSync('postfix', ['-c', join(dir, 'conf'), 'start'], { stdio: 'ignore', timeout: 60_000 })
  const cleanupSocket = join(dir, 'spool', 'public', 'cleanup')
  const box = join(dir, 'mail', 'box')
  const messages = (): Buffer[] => {
    const out: { t: string; b: Buffer }[] = []
    for (const sub of ['new', 'cur']) {
      const d = join(box, sub)
      if (!existsSync(d)) continue
      for (const n of readdirSync(d)) out.push({ t: n, b: readFileSync(join(d, n)) })
    }
    return out.sort((a, b) => (a.t < b.t ? -1 : 1)).map((x) => x.b)
  }
  return {
    dir,
    cleanupSocket,
    messages,
    log: () => (existsSync(join(dir, 'maillog')) ? readFileSync(join(dir, 'maillog'), 'utf8') : ''),
    async waitFor(n, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs
      for (;;) {
        const m = messages()
        if (m.length >= n || Date.now() > end) return m
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    close() {
      const pidFile = join(dir, 'spool', 'pid', 'master.pid')
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0
      try {
        execFileSync('postfix', ['-c', join(dir, 'conf'), 'stop'], { stdio: 'ignore', timeout: 60_000 })
      } catch {}
      // `postfix stop` only signals master; wait (bounded) until it is gone before removing its files.
      const pause = new Int32Array(new SharedArrayBuffer(4))
      for (let i = 0; pid > 0 && i < 100 && alive(pid); i++) Atomics.wait(pause, 0, 0, 100)
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 })
    },
  }
}
