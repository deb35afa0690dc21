/**
 * A private Dovecot auth service for tests (Debian dovecot-core): only the auth process, its
 * client protocol (the one Postfix's smtpd_sasl_type=dovecot speaks) on a Unix socket and on
 * 127.0.0.1:<free port>, passdb a passwd-file. Mechanisms PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 and
 * SCRAM-SHA-1; no failure delay, so refusals come at once. Runs in the foreground as a child.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stopChild } from './aiosmtpd.ts'
import { freePort, waitForPort } from './free-port.ts'

export interface DovecotAuth {
  readonly port: number
  readonly socket: string
  log(): Promise<string>
  stop(): Promise<void>
}

/** `users`: name to passwd-file password field (`{PLAIN}secret`, `{SCRAM-SHA-256}...`). */
export async function startDovecotAuth(users: Readonly<Record<string, string>>): Promise<DovecotAuth> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-dovecot-auth-'))
  await chmod(dir, 0o755)
  const port = await freePort()
  const passwd = Object.entries(users).map(([u, p]) => `${u}:${p}:65534:65534::/nonexistent::`)
  await writeFile(join(dir, 'users'), `${passwd.join('\n')}\n`)
  const conf = [
    'protocols =',
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    `log_path = ${dir}/dovecot.log`,
    `instance_name = qtsmtpd-auth-${port}`,
    'default_login_user = nobody',
    'default_internal_user = nobody',
    'default_internal_group = nogroup',
    'ssl = no',
    'auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256',
    'disable_plaintext_auth = no',
    'auth_failure_delay = 0',
    'auth_verbose = yes',
    `passdb {\n  driver = passwd-file\n  args = ${dir}/users\n}`,
    `userdb {\n  driver = passwd-file\n  args = ${dir}/users\n}`,
    'service auth {',
    '  unix_listener auth-client {\n    mode = 0666\n  }',
    `  inet_listener auth-inet {\n    address = 127.0.0.1\n    port = ${port}\n  }`,
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
    throw new Error(`dovecot auth did not start: ${(e as Error).message}\n${stderr}\n${log}`)
  }
  return {
    port,
    socket: join(dir, 'run', 'auth-client'),
    log: () => readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => ''),
    stop,
  }
}
