/**
 * auth/auth_checkpassword (qpsmtpd's): PLAIN and LOGIN against a checkpassword program
 * (cr.yp.to/checkpwd/interface.html): `user NUL password NUL timestamp NUL` on descriptor 3,
 * the program runs the `true` program (with its arguments) when the password is right.
 * Exit 0: accepted; 1 (the interface's "bad") or 100 (a CVM module's "credentials rejected",
 * which cvm-checkpassword passes on): refused; 2 (misuse), 111 (temporary), any other code, a
 * signal or the deadline: 454, and the program's stderr is logged.
 * A checkpassword program cannot tell a missing user from a wrong password; nor can we.
 * Security: an argument vector, never a shell; the credentials only ever travel on descriptor 3.
 */
import type { ChildProcess } from 'node:child_process'
import { definePlugin } from '../../host/define-plugin.ts'
import { opt } from '../../host/options.ts'
import { findProgram } from '../../net/child-process.ts'
import { bad, ok, passwordBackend, unavailable, withoutSecret } from './password-backend.ts'

/** The checkpassword exit codes that mean "this password is wrong". */
const REFUSED = new Set([1, 100])

/** Splits a configured command into its words (no shell: no quotes, no variables). */
const words = (s: string): string[] => s.split(/\s+/).filter((w) => w !== '')

export default definePlugin({
  name: 'auth/auth_checkpassword',
  aliases: ['auth_checkpassword', 'auth/checkpassword'],
  description: 'SMTP AUTH (PLAIN, LOGIN) through a checkpassword program (vchkpw, cvm-checkpassword, ...)',
  options: {
    checkpw: opt.optionalString({
      description: 'the checkpassword program, with its arguments separated by spaces (no shell)',
    }),
    true: opt.optionalString({ description: 'the program checkpassword runs on success (/bin/true)' }),
    timeout: opt.number({ default: 5, min: 0.1, max: 120, description: 'seconds before the program is killed (454)' }),
  },
  // Our own `timeout` answers first; the host's limit is only a backstop.
  timeoutMs: 130_000,
  async setup({ name, options, config, paths, log, net, metrics, clock }) {
    let command = options.checkpw === undefined ? [] : words(options.checkpw)
    let truth = options.true === undefined ? [] : words(options.true)
    let where = 'the plugin arguments'
    if (command.length === 0 || truth.length === 0) {
      // qpsmtpd's config/smtpauth-checkpassword: `CHECKPW TRUE`; words before the last are the
      // checkpassword program and its arguments.
      const line = config.located('smtpauth-checkpassword')[0]
      const fileWords = line === undefined ? [] : words(line.text)
      if (line === undefined || fileWords.length < 2)
        throw new Error(
          line === undefined
            ? 'give checkpw and true (auth/auth_checkpassword checkpw /path/to/checkpassword true /bin/true) or config/smtpauth-checkpassword'
            : `${line.file}:${line.line}: expected "CHECKPASSWORD [ARGUMENTS] TRUE"`,
        )
      command = fileWords.slice(0, -1)
      truth = fileWords.slice(-1)
      where = `${line.file}:${line.line}`
    }
    const resolve = async (argv: string[]) => {
      const program = await findProgram(argv[0] as string, paths)
      if (program === undefined) throw new Error(`${where}: ${argv[0]} is missing or not executable`)
      return [program, ...argv.slice(1)]
    }
    const argv = [...(await resolve(command)), ...(await resolve(truth))]
    const program = argv[0] as string
    log.info(`checking passwords with ${program}`)

    const authPassword = passwordBackend({ plugin: name, label: 'checkpassword', metrics }, async (ctx, login) => {
      const input = Buffer.from(`${login.user}\0${login.password}\0${Math.floor(clock.now() / 1000)}\0`, 'utf8')
      const feed = (child: ChildProcess) =>
        new Promise<void>((resolve, reject) => {
          const fd3 = child.stdio[3] as NodeJS.WritableStream | null | undefined
          if (fd3 === null || fd3 === undefined) return reject(new Error('no descriptor 3'))
          fd3.on('error', reject)
          fd3.end(input, () => resolve())
        })
      const r = await net.run({
        argv,
        stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
        timeoutMs: options.timeout * 1000,
        signal: ctx.signal,
        maxOutput: 2048,
        feed,
      })
      const said = () => {
        const text = withoutSecret(r.stderr.trim(), login.password).slice(0, 300)
        return text === '' ? '' : `: ${text}`
      }
      if (r.spawnError !== undefined) return unavailable(`cannot run ${program}: ${r.spawnError.message}`)
      if (r.timedOut) return unavailable(`${program} did not answer within ${options.timeout} s and was killed`)
      if (r.code === undefined) return unavailable(`${program} was killed by ${r.signal ?? 'a signal'}${said()}`)
      if (r.code === 0) return ok()
      if (REFUSED.has(r.code)) return bad(`${program} exited ${r.code}`)
      const meaning = r.code === 2 ? ' (misuse)' : r.code === 111 ? ' (temporary failure)' : ''
      return unavailable(`${program} exited ${r.code}${meaning}${said()}`)
    })
    return { hooks: { authPassword } }
  },
})
