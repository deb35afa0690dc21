/**
 * A private Postfix instance for outbound tests (Debian postfix): its own config, queue and
 * data directories under a temp dir, smtpd on 127.0.0.1:<free port>, virtual mailboxes
 * (Maildir) for u1, u2 and temp @dest.test; temp@dest.test gets 450 at RCPT, unknown users
 * 550. XCLIENT and XFORWARD are allowed from loopback. Needs root (Postfix drops to the
 * postfix user). Always call stop(), also when a test fails.
 */
import { execFile } from 'node:child_process'
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, waitForPort } from './free-port.ts'

const run = promisify(execFile)

export interface Postfix {
  readonly port: number
  readonly dir: string
  /** Files delivered to user's Maildir/new (waits up to timeoutMs for `count`). */
  mailbox(user: string, count?: number, timeoutMs?: number): Promise<string[]>
  maillog(): Promise<string>
  stop(): Promise<void>
}

export async function startPostfix(opts: { tls?: { certFile: string; keyFile: string } } = {}): Promise<Postfix> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-postfix-'))
  await chmod(dir, 0o755)
  const conf = join(dir, 'conf')
  for (const d of ['conf', 'queue', 'data', 'mail']) await mkdir(join(dir, d))
  const ids = await postfixIds()
  await chown(join(dir, 'data'), ids.postfix, 0)
  await chown(join(dir, 'mail'), 65534, 65534)
  const port = await freePort()
  const main = [
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    'mail_owner = postfix',
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'myhostname = relay.test',
    'mydomain = test',
    'mydestination =',
    'mynetworks = 127.0.0.0/8',
    'alias_maps =',
    'alias_database =',
    `maillog_file = ${dir}/maillog`,
    `maillog_file_prefixes = ${dir}`,
    'virtual_mailbox_domains = dest.test',
    `virtual_mailbox_base = ${dir}/mail`,
    `virtual_mailbox_maps = texthash:${conf}/mailboxes`,
    'virtual_uid_maps = static:65534',
    'virtual_gid_maps = static:65534',
    `smtpd_recipient_restrictions = check_recipient_access texthash:${conf}/access, permit_mynetworks, reject`,
    'smtpd_authorized_xclient_hosts = 127.0.0.0/8',
    'smtpd_authorized_xforward_hosts = 127.0.0.0/8',
    'smtputf8_enable = yes',
    ...(opts.tls
      ? [
          `smtpd_tls_cert_file = ${opts.tls.certFile}`,
          `smtpd_tls_key_file = ${opts.tls.keyFile}`,
          'smtpd_tls_security_level = may',
        ]
      : []),
  ]
  const services = [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'proxymap unix - - n - - proxymap',
    'smtp unix - - n - - smtp',
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
  await writeFile(join(conf, 'main.cf'), `${main.join('\n')}\n`)
  await writeFile(join(conf, 'master.cf'), `${services.join('\n')}\n`)
  await writeFile(join(conf, 'mailboxes'), 'u1@dest.test u1/\nu2@dest.test u2/\ntemp@dest.test temp/\n')
  await writeFile(join(conf, 'access'), 'temp@dest.test 450 4.2.0 try later\n')
  const stop = async () => {
    await run('postfix', ['-c', conf, 'stop']).catch(() => undefined)
    await rm(dir, { recursive: true, force: true }).catch(() => undefined)
  }
  try {
    await run('postfix', ['-c', conf, 'start'])
    await waitForPort(port)
  } catch (e) {
    const log = await readFile(join(dir, 'maillog'), 'utf8').catch(() => '')
    await stop()
    throw new Error(`postfix did not start: ${(e as Error).message}\n${log}`)
  }
  return {
    port,
    dir,
    async mailbox(user, count = 1, timeoutMs = 10_000) {
      const where = join(dir, 'mail', user, 'new')
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const files = await readdir(where).catch(() => [] as string[])
        if (files.length >= count || Date.now() > deadline)
          return Promise.all(files.sort().map((f) => readFile(join(where, f), 'utf8')))
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    maillog: () => readFile(join(dir, 'maillog'), 'utf8').catch(() => ''),
    stop,
  }
}

async function postfixIds(): Promise<{ postfix: number }> {
  const { stdout } = await run('id', ['-u', 'postfix'])
  return { postfix: Number(stdout.trim()) }
}
