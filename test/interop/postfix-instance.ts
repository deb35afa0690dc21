/**
 * A private Postfix instance for tests (Debian postfix): its own config and queue directories
 * in a temp dir, listening on loopback ports only, started with `postfix -c DIR start` and
 * stopped with `postfix -c DIR stop`. Needs root (Postfix's master runs as root).
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface PostfixService {
  /** 127.0.0.1:PORT */
  readonly port: number
  /** `-o name=value` overrides for this smtpd. */
  readonly options: Readonly<Record<string, string>>
}

export interface PostfixInstance {
  readonly dir: string
  log(): string
  stop(): void
}

const services = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

export function startPostfix(opts: {
  /** Where Postfix delivers everything in the end (relayhost). */
  readonly relayPort: number
  readonly smtpd: readonly PostfixService[]
  readonly main?: Readonly<Record<string, string>>
}): PostfixInstance {
  const dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-postfix-'))
  chmodSync(dir, 0o755)
  const conf = join(dir, 'conf')
  mkdirSync(conf)
  mkdirSync(join(dir, 'queue'))
  mkdirSync(join(dir, 'data'))
  execFileSync('chown', ['postfix', join(dir, 'data')])
  const main: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: join(dir, 'queue'),
    data_directory: join(dir, 'data'),
    mail_owner: 'postfix',
    setgid_group: 'postdrop',
    myhostname: 'pf.test',
    mydomain: 'pf.test',
    myorigin: 'pf.test',
    mydestination: '',
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    relayhost: `[127.0.0.1]:${opts.relayPort}`,
    smtpd_recipient_restrictions: 'permit_mynetworks, reject',
    alias_maps: '',
    alias_database: '',
    local_recipient_maps: '',
    smtp_tls_security_level: 'none',
    smtpd_tls_security_level: 'none',
    maillog_file: join(dir, 'maillog'),
    maillog_file_prefixes: dir,
    syslog_name: 'postfix-qt',
    smtp_dns_support_level: 'disabled',
    queue_run_delay: '1s',
    minimal_backoff_time: '1s',
    maximal_backoff_time: '2s',
    ...opts.main,
  }
  writeFileSync(
    join(conf, 'main.cf'),
    Object.entries(main)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n') + '\n',
  )
  const smtpd = opts.smtpd
    .map(
      (s) =>
        `127.0.0.1:${s.port} inet n - n - - smtpd\n` +
        Object.entries(s.options)
          .map(([k, v]) => `  -o ${k}=${v}\n`)
          .join(''),
    )
    .join('')
  writeFileSync(join(conf, 'master.cf'), smtpd + services)
  execFileSync('postfix', ['-c', conf, 'check'], { stdio: 'pipe' })
  execFileSync('postfix', ['-c', conf, 'start'], { stdio: 'pipe' })
  return {
    dir,
    log: () => {
      try {
        return readFileSync(join(dir, 'maillog'), 'utf8')
      } catch {
        return ''
      }
    },
    stop: () => {
      try {
        execFileSync('postfix', ['-c', conf, 'stop'], { stdio: 'pipe' })
      } catch {}
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
