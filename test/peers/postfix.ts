/**
 * A private Postfix instance for tests (Debian postfix): config, queue, data and mail
 * directories under a temp dir, started with `postfix -c <dir>/conf start`. main.cf starts from
 * loopback-only defaults that the caller overrides; smtpd listeners on 127.0.0.1 are optional
 * (without any, only the cleanup socket takes mail); virtual(8) can deliver to Maildirs. Needs
 * root (Postfix's master runs as root, its daemons as the postfix user). Always call stop(),
 * also when a test fails; a failed start cleans up itself.
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, waitForPort } from './free-port.ts'

const run = promisify(execFile)

export interface PostfixSmtpd {
  /** 127.0.0.1:port; a free port is picked when omitted. */
  readonly port?: number
  /** `-o name=value` overrides for this smtpd. */
  readonly options?: Readonly<Record<string, string>>
}

export interface PostfixOptions {
  /** main.cf settings over the defaults; `{conf}` in a value stands for the config directory. */
  readonly main?: Readonly<Record<string, string>>
  /** Extra master.cf service lines. */
  readonly master?: readonly string[]
  /** Files written to the config directory before start (lookup tables, header_checks). */
  readonly files?: Readonly<Record<string, string>>
  readonly smtpd?: readonly PostfixSmtpd[]
  /**
   * Maildir delivery by virtual(8) under `<dir>/mail`: 'catch-all' puts every recipient of any
   * domain into the mailbox `box`; a list of addresses gives each a mailbox named by its local
   * part, and other addresses in their domains are unknown (550). Omitted: no local delivery.
   */
  readonly maildir?: 'catch-all' | readonly string[]
}

export interface Postfix {
  readonly dir: string
  readonly conf: string
  readonly queueDir: string
  /** The cleanup(8) socket (public/cleanup in the queue directory). */
  readonly cleanupSocket: string
  /** The smtpd listeners' ports, in the order given; `port` is the first (0 without any). */
  readonly ports: readonly number[]
  readonly port: number
  /** Messages delivered to a Maildir (new and cur), oldest first. */
  messages(user?: string): Buffer[]
  /** Waits (bounded) until `count` messages were delivered; returns what is there by then. */
  waitFor(count: number, opts?: { user?: string; timeoutMs?: number }): Promise<Buffer[]>
  /** waitFor as text, for one user's mailbox. */
  mailbox(user: string, count?: number, timeoutMs?: number): Promise<string[]>
  /** Postfix's mail log ('' before the first line). */
  log(): string
  stop(): Promise<void>
}

const services = [
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
  'smtp unix - - n - - smtp',
  'relay unix - - n - - smtp',
  'showq unix n - n - - showq',
  'error unix - - n - - error',
  'retry unix - - n - - error',
  'discard unix - - n - - discard',
  'local unix - n n - - local',
  'virtual unix - n n - - virtual',
  'anvil unix - - n - 1 anvil',
  'scache unix - - n - 1 scache',
  'postlog unix-dgram n - n - 1 postlogd',
  'tlsmgr unix - - n 1000? 1 tlsmgr',
]

export async function startPostfix(opts: PostfixOptions = {}): Promise<Postfix> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-postfix-'))
  const conf = join(dir, 'conf')
  const queueDir = join(dir, 'queue')
  const mail = join(dir, 'mail')
  const maillog = join(dir, 'maillog')
  const log = () => (existsSync(maillog) ? readFileSync(maillog, 'utf8') : '')
  const stop = async () => {
    const pidFile = join(queueDir, 'pid', 'master.pid')
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0
    await run('postfix', ['-c', conf, 'stop'], { timeout: 60_000 }).catch(() => undefined)
    // `postfix stop` only signals master: wait (bounded) until it is gone before removing its files.
    for (let i = 0; pid > 0 && i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100))
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }).catch(() => undefined)
  }
  try {
    // Postfix's daemons run as the postfix user and must reach data/ and mail/.
    await chmod(dir, 0o755)
    for (const d of [conf, queueDir, join(dir, 'data'), mail]) await mkdir(d)
    const ids = await postfixIds()
    await chown(join(dir, 'data'), ids.uid, ids.gid)
    await chown(mail, ids.uid, ids.gid)
    const smtpd = await Promise.all(
      (opts.smtpd ?? []).map(async (s) => ({ port: s.port ?? (await freePort()), options: s.options ?? {} })),
    )
    const main: Record<string, string> = {
      compatibility_level: '3.6',
      queue_directory: queueDir,
      data_directory: join(dir, 'data'),
      mail_owner: 'postfix',
      setgid_group: 'postdrop',
      myhostname: 'postfix.test',
      mydestination: '',
      inet_interfaces: '127.0.0.1',
      inet_protocols: 'ipv4',
      mynetworks: '127.0.0.0/8',
      alias_maps: '',
      alias_database: '',
      local_recipient_maps: '',
      maillog_file: maillog,
      maillog_file_prefixes: dir,
      smtputf8_enable: 'yes',
      smtp_dns_support_level: 'disabled',
      queue_run_delay: '1s',
      minimal_backoff_time: '1s',
      maximal_backoff_time: '2s',
      ...maildirSettings(opts.maildir, conf, mail, ids),
      ...opts.main,
    }
    const files: Record<string, string> = { ...opts.files }
    if (Array.isArray(opts.maildir))
      files.mailboxes = opts.maildir.map((a) => `${a} ${a.slice(0, a.lastIndexOf('@'))}/\n`).join('')
    for (const [name, text] of Object.entries(files)) await writeFile(join(conf, name), text)
    const mainCf = Object.entries(main).map(([k, v]) => `${k} = ${v.replaceAll('{conf}', conf)}\n`)
    await writeFile(join(conf, 'main.cf'), mainCf.join(''))
    const listeners = smtpd.map(
      (s) =>
        `127.0.0.1:${s.port} inet n - n - - smtpd\n` +
        Object.entries(s.options)
          .map(([k, v]) => `  -o ${k}=${v}\n`)
          .join(''),
    )
    await writeFile(
      join(conf, 'master.cf'),
      `${listeners.join('')}${[...services, ...(opts.master ?? [])].join('\n')}\n`,
    )
    await run('postfix', ['-c', conf, 'start'], { timeout: 60_000 })
    for (const s of smtpd) await waitForPort(s.port)
    const ports = smtpd.map((s) => s.port)
    const messages = (user = 'box'): Buffer[] => {
      const out: { name: string; data: Buffer }[] = []
      for (const sub of ['new', 'cur']) {
        const d = join(mail, user, sub)
        if (!existsSync(d)) continue
        for (const name of readdirSync(d)) out.push({ name, data: readFileSync(join(d, name)) })
      }
      return out.sort((a, b) => deliveredAt(a.name) - deliveredAt(b.name)).map((m) => m.data)
    }
    const waitFor = async (count: number, o: { user?: string; timeoutMs?: number } = {}) => {
      const deadline = Date.now() + (o.timeoutMs ?? 20_000)
      for (;;) {
        const got = messages(o.user)
        if (got.length >= count || Date.now() > deadline) return got
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    return {
      dir,
      conf,
      queueDir,
      cleanupSocket: join(queueDir, 'public', 'cleanup'),
      ports,
      port: ports[0] ?? 0,
      messages,
      waitFor,
      mailbox: async (user, count = 1, timeoutMs = 10_000) =>
        (await waitFor(count, { user, timeoutMs })).map((b) => b.toString('utf8')),
      log,
      stop,
    }
  } catch (e) {
    const text = log()
    await stop()
    throw new Error(`postfix did not start: ${(e as Error).message}\n${text}`)
  }
}

function maildirSettings(
  maildir: PostfixOptions['maildir'],
  conf: string,
  base: string,
  ids: { uid: number; gid: number },
): Record<string, string> {
  if (maildir === undefined) return {}
  const domains =
    maildir === 'catch-all' ? 'static:all' : [...new Set(maildir.map((a) => a.slice(a.lastIndexOf('@') + 1)))].join(' ')
  return {
    virtual_mailbox_domains: domains,
    virtual_mailbox_base: base,
    virtual_mailbox_maps: maildir === 'catch-all' ? 'static:box/' : `texthash:${conf}/mailboxes`,
    virtual_uid_maps: `static:${ids.uid}`,
    virtual_gid_maps: `static:${ids.gid}`,
    virtual_minimum_uid: '1',
  }
}

async function postfixIds(): Promise<{ uid: number; gid: number }> {
  const [u, g] = await Promise.all([run('id', ['-u', 'postfix']), run('id', ['-g', 'postfix'])])
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * When virtual(8) began writing a Maildir file, in microseconds, from its name
 * (`<sec>.V<dev>I<inode>M<usec>.<host>`, maildir.c): sorting the names as strings would put
 * the inode before the microseconds and mix up messages delivered within one second.
 */
function deliveredAt(name: string): number {
  const m = /^(\d+)\.V[0-9a-f]+I[0-9a-f]+M(\d+)\./.exec(name)
  if (m === null) throw new Error(`not a Maildir name virtual(8) writes: ${name}`)
  return Number(m[1]) * 1_000_000 + Number(m[2])
}
