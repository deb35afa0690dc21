/**
 * The login workload's contenders: every connection does STARTTLS, AUTH PLAIN, one 2 KB message
 * and QUIT, so its rate is logins per second.
 *
 * - qtsmtpd with `tls` and `auth/auth_flat_file` (one process, and `--workers`);
 * - Haraka with `tls` and `auth/flat_file`.
 *
 * Both keep the password in clear text (Haraka's flat file knows no other form), so the rate is
 * the protocol and TLS, not a password hash; qtsmtpd then also verifies a dummy hashed entry
 * for no user (there is none), as it does for unknown users.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type BenchContext, type Contender, haraka, launch, qtsmtpdCheck } from './contenders.ts'

export const LOGIN_USER = 'bench@bench.test'
export const LOGIN_PASSWORD = 'b3nch-Passw0rd'
const DOMAIN = 'bench.test'

const write = (file: string, text: string) => writeFileSync(file, text.endsWith('\n') ? text : `${text}\n`)

export function qtsmtpdLogin(opts: { id: string; label: string; workers?: number }): Contender {
  let config = ''
  return {
    id: opts.id,
    label: opts.label,
    tls: true,
    only: ['login'],
    async install(ctx: BenchContext) {
      const base = join(ctx.work, 'qtsmtpd', opts.id)
      config = join(base, 'config')
      rmSync(base, { recursive: true, force: true })
      mkdirSync(config, { recursive: true })
      write(join(config, 'me'), `mx.${DOMAIN}`)
      write(join(config, 'rcpthosts'), DOMAIN)
      write(join(config, 'loglevel'), '2')
      write(join(config, 'spool_dir'), join(base, 'spool'))
      write(join(config, 'flat_auth_pw'), `${LOGIN_USER}:${LOGIN_PASSWORD}`)
      write(join(config, 'smtpd.conf'), ['auth_failure_delay 0', 'error_delay 0'].join('\n'))
      write(
        join(config, 'plugins'),
        [`tls ${ctx.tls.cert} ${ctx.tls.key}`, 'auth/auth_flat_file', 'rcpt_ok', 'queue/discard'].join('\n'),
      )
      const problem = qtsmtpdCheck(ctx, config)
      if (problem !== '') throw new Error(`qtsmtpd --check failed: ${problem.trim()}`)
      return 'the qtsmtpd above, tls + auth/auth_flat_file'
    },
    start(ctx: BenchContext, port: number) {
      const args = [
        join(ctx.repo, 'bin/qtsmtpd'),
        '--config',
        config,
        '--listen',
        `127.0.0.1:${port}`,
        '--max-connections',
        '0',
        '--max-connections-per-ip',
        '0',
        ...(opts.workers === undefined ? [] : ['--workers', String(opts.workers)]),
      ]
      return launch(process.execPath, args, port, { cwd: ctx.repo })
    },
  }
}

export function harakaLogin(): Contender {
  const ini = ['[core]', 'methods=PLAIN,LOGIN', '[users]', `${LOGIN_USER}=${LOGIN_PASSWORD}`]
  const contender = haraka({
    id: 'haraka-login',
    label: 'Haraka + auth/flat_file',
    instance: 'instance-login',
    only: ['login'],
    plugins: ['bench_no_rdns', 'tls', 'auth/flat_file', 'rcpt_to.in_host_list', 'queue/discard'],
    files: () => ({ 'config/auth_flat_file.ini': ini.join('\n') }),
  })
  // haraka() takes a variant with plugins of its own for one without TLS: this one has it.
  return { ...contender, tls: true }
}
