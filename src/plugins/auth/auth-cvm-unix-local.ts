/**
 * auth/auth_cvm_unix_local (qpsmtpd's): PLAIN and LOGIN against a Credential Validation Module
 * (Debian's cvm: cvm-unix, cvm-pwfile, cvm-qmail, ...) on its Unix socket (`cvm-local:`) or UDP
 * (`cvm-udp:`), with CVM protocol version 2 (qpsmtpd spoke version 1, whose NUL-separated
 * fields a NUL in a password could shift). `user@domain` is sent as account and domain.
 * The module answers 0 (valid), 100 (rejected: a wrong password or an unknown user, which CVM
 * does not tell apart) or another code (temporary: 454), as does a module that is down or silent.
 * qpsmtpd's enable_smtp (default no: ports 25 and 587) and enable_ssmtp (default yes: port 465)
 * are kept, by listener role.
 */
import { askCvm, CVM_OK, CVM_PERMFAIL, parseCvmTarget } from '../../clients/cvm/cvm.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { opt } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import { bad, ok, passwordBackend, unavailable } from './password-backend.ts'

export default definePlugin({
  name: 'auth/auth_cvm_unix_local',
  aliases: ['auth_cvm_unix_local', 'auth/cvm'],
  description: 'SMTP AUTH (PLAIN, LOGIN) against a CVM module on a Unix socket or UDP',
  options: {
    cvm_socket: opt.string({ description: 'cvm-local:/path/to/socket (or the bare path), or cvm-udp:host:port' }),
    enable_smtp: opt.boolean({
      default: false,
      description: 'answer on smtp and submission listeners (qpsmtpd: ports 25, 587)',
    }),
    enable_ssmtp: opt.boolean({ default: true, description: 'answer on smtps listeners (qpsmtpd: port 465)' }),
    timeout: opt.number({ default: 5, min: 0.1, max: 60, description: 'seconds to wait for the module (454 past it)' }),
  },
  timeoutMs: 65_000,
  setup({ name, options, log, net, metrics }) {
    const target = parseCvmTarget(options.cvm_socket)
    const where = target.kind === 'local' ? `cvm-local:${target.path}` : `cvm-udp:${target.host}:${target.port}`
    const roles = [...(options.enable_smtp ? ['smtp', 'submission'] : []), ...(options.enable_ssmtp ? ['smtps'] : [])]
    if (roles.length === 0) log.warn('enable_smtp and enable_ssmtp are both off: this plugin never answers')
    else log.info(`checking passwords with ${where} on ${roles.join(', ')} listeners`)

    const check = passwordBackend({ plugin: name, label: 'cvm', metrics }, async (ctx, login) => {
      const at = login.user.lastIndexOf('@')
      const creds = {
        account: at < 0 ? login.user : login.user.slice(0, at),
        domain: at < 0 ? undefined : login.user.slice(at + 1),
        password: login.password,
      }
      if ([creds.account, creds.domain ?? '', creds.password].some((v) => Buffer.byteLength(v) > 255))
        return bad('a credential longer than CVM carries (255 bytes)')
      const answer = await askCvm(target, creds, {
        timeoutMs: options.timeout * 1000,
        signal: ctx.signal,
        transport: net,
      })
      if (answer.status === CVM_OK) return ok()
      if (answer.status === CVM_PERMFAIL) return bad('credentials rejected (100)')
      return unavailable(`${where} answered with error ${answer.status}`)
    })
    return {
      hooks: {
        authPassword: (ctx, login) =>
          roles.includes(ctx.connection.listener.role) ? check(ctx, login) : pass('not enabled on this listener'),
      },
    }
  },
})
