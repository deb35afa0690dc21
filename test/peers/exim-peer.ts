/**
 * A private Exim for tests: Debian's exim4 unpacked by test/peers/exim.sh (Postfix and Exim cannot
 * both be installed), a config in a temp dir that delivers every recipient to one Maildir, and an
 * ACL that refuses mail for deny.test. Nothing listens on the network: messages go in with -bS.
 */
import { execFileSync } from 'node:child_process'
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

export interface EximPeer {
  readonly bin: string
  readonly conf: string
  readonly dir: string
  readonly maildir: string
  /** Arguments for queue/exim-bsmtp's `exim_args`. */
  readonly args: readonly string[]
  /** Every delivered message's bytes. */
  messages(): Buffer[]
  close(): void
}

export function eximBinary(): string {
  const script = resolve(import.meta.dirname, 'exim.sh')
  const out = execFileSync(script, [], { encoding: 'utf8', timeout: 300_000 }).trim().split('\n')
  return out.at(-1) as string
}

export function startExim(opts: { deliver?: 'now' | 'queue' } = {}): EximPeer {
  const bin = eximBinary()
  const dir = mkdtempSync(join(tmpdir(), 'qt-exim-'))
  const uid = Number(execFileSync('id', ['-u', 'Debian-exim'], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', 'Debian-exim'], { encoding: 'utf8' }).trim())
  const maildir = join(dir, 'mail')
  for (const d of ['spool', 'log', 'mail']) {
    mkdirSync(join(dir, d))
    chownSync(join(dir, d), uid, gid)
  }
  chownSync(dir, uid, gid)
  const conf = join(dir, 'exim.conf')
  writeFileSync(
    conf,
    [
      `exim_path = ${bin}`,
      'exim_user = Debian-exim',
      'exim_group = Debian-exim',
      `spool_directory = ${dir}/spool`,
      `log_file_path = ${dir}/log/%slog`,
      'primary_hostname = exim.test',
      'keep_environment =',
      'acl_not_smtp = acl_check',
      'begin acl',
      'acl_check:',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Exim's expansion syntax
      '  deny condition = ${if match{$recipients}{deny.test}}',
      '    message = denied by policy',
      '  accept',
      'begin routers',
      'all:',
      '  driver = accept',
      '  transport = box',
      'begin transports',
      'box:',
      '  driver = appendfile',
      `  directory = ${maildir}`,
      '  maildir_format',
      '  user = Debian-exim',
      '  create_directory',
      '  return_path_add',
      '  envelope_to_add',
      '',
    ].join('\n'),
  )
  return {
    bin,
    conf,
    dir,
    maildir,
    args: ['-C', conf, opts.deliver === 'queue' ? '-odq' : '-odi'],
    messages() {
      const out: Buffer[] = []
      for (const sub of ['new', 'cur']) {
        let names: string[] = []
        try {
          names = readdirSync(join(maildir, sub))
        } catch {}
        for (const n of names.sort()) out.push(readFileSync(join(maildir, sub, n)))
      }
      return out
    },
    close() {
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 })
    },
  }
}
