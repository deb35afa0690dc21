/**
 * A private Dovecot LMTP server for tests (Debian dovecot-core, dovecot-lmtpd): config, run
 * and mail directories under a temp dir, LMTP on 127.0.0.1:<free port> and a Unix socket,
 * passwd-file users alice and bob (Maildir), `tinytemp` (1-byte quota, over-quota is a 452
 * after DATA) and `tinyperm` (1-byte quota, a 552 after DATA). Runs in the foreground
 * (`dovecot -F`) as a child; stop() ends it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stopChild } from './aiosmtpd.ts'
import { freePort, waitForPort } from './free-port.ts'

export interface Dovecot {
  readonly port: number
  readonly socket: string
  readonly dir: string
  /** Messages in user's INBOX (Maildir new + cur). */
  mailbox(user: string): Promise<string[]>
  log(): Promise<string>
  stop(): Promise<void>
}

export async function startDovecot(): Promise<Dovecot> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-dovecot-'))
  await chmod(dir, 0o755)
  const mail = join(dir, 'mail')
  await mkdir(mail)
  await chown(mail, 65534, 65534)
  const port = await freePort()
  const socket = join(dir, 'run', 'lmtp-test')
  const users = ['alice', 'bob', 'tinytemp', 'tinyperm'].map((u) => {
    const extra = u.startsWith('tiny')
      ? `userdb_quota_rule=*:storage=1B${u === 'tinytemp' ? ' userdb_quota_full_tempfail=yes' : ''}`
      : ''
    return `${u}:{PLAIN}secret:65534:65534::${mail}/${u}::${extra}`
  })
  await writeFile(join(dir, 'users'), `${users.join('\n')}\n`)
  const conf = [
    'protocols = lmtp',
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    `log_path = ${dir}/dovecot.log`,
    `instance_name = qtsmtpd-test-${port}`,
    'default_login_user = nobody',
    'default_internal_user = nobody',
    'default_internal_group = nogroup',
    'ssl = no',
    'first_valid_uid = 1',
    'mail_location = maildir:~/Maildir',
    'auth_username_format = %Ln',
    'mail_plugins = $mail_plugins quota',
    'plugin {',
    '  quota = maildir:User quota',
    '}',
    `passdb {\n  driver = passwd-file\n  args = ${dir}/users\n}`,
    `userdb {\n  driver = passwd-file\n  args = ${dir}/users\n}`,
    'service lmtp {',
    `  inet_listener lmtp {\n    address = 127.0.0.1\n    port = ${port}\n  }`,
    '  unix_listener lmtp-test {\n    mode = 0666\n  }',
    '}',
  ]
  await writeFile(join(dir, 'dovecot.conf'), `${conf.join('\n')}\n`)
  const child: ChildProcess = spawn('dovecot', ['-F', '-c', join(dir, 'dovecot.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (d) => {
    stderr += String(d)
  })
  const stop = async () => {
    await stopChild(child)
    await rm(dir, { recursive: true, force: true }).catch(() => undefined)
  }
  try {
    await waitForPort(port)
  } catch (e) {
    const log = await readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => '')
    await stop()
    throw new Error(`dovecot did not start: ${(e as Error).message}\n${stderr}\n${log}`)
  }
  return {
    port,
    socket,
    dir,
    async mailbox(user) {
      const out: string[] = []
      for (const sub of ['new', 'cur']) {
        const where = join(mail, user, 'Maildir', sub)
        for (const f of (await readdir(where).catch(() => [] as string[])).sort())
          out.push(await readFile(join(where, f), 'utf8'))
      }
      return out
    },
    log: () => readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => ''),
    stop,
  }
}
