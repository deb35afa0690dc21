/**
 * auth/dovecot: SMTP AUTH through Dovecot's auth service, as Postfix does with
 * `smtpd_sasl_type = dovecot`: every mechanism Dovecot is configured for (`auth_mechanisms`) is
 * offered and run by Dovecot over the core's channel (CRAM-MD5, SCRAM-SHA-1, SCRAM-SHA-256, ...),
 * and PLAIN and LOGIN passwords are checked there too (as PLAIN), after any password backend
 * before it in config/plugins. Connections (Unix socket or TCP) are pooled and reused.
 * Security: Dovecot down, slow or talking nonsense is a temporary failure (454), never an
 * acceptance; mechanisms Dovecot marks `private`, and -PLUS ones (no channel binding in its
 * protocol 1.2), are not offered. Passwords and responses never reach a log.
 */
import {
  authLine,
  clientHello,
  contLine,
  type DovecotMechanism,
  HandshakeReader,
  parseServerReply,
} from '../../clients/dovecot-auth/protocol.ts'
import { type AuthVerdict, authenticated, type SaslChannel } from '../../host/auth.ts'
import type { HookContext } from '../../host/context.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { AuthMechanismsHook, AuthPasswordHook, AuthSaslHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { defer, pass, reject } from '../../host/verdict.ts'
import { describeTarget, type LineConnection, parseTarget } from '../../net/index.ts'

interface Connection {
  readonly lines: LineConnection
  nextId: number
}

/** How often a missing Dovecot is asked again for its mechanisms, at most. */
const RETRY_MS = 5_000

export default definePlugin({
  name: 'auth/dovecot',
  aliases: ['auth/dovecot_sasl', 'dovecot_sasl'],
  description: "SMTP AUTH through Dovecot's auth service (Postfix's smtpd_sasl_type dovecot)",
  options: {
    socket: opt.string({
      positional: 0,
      description: "Dovecot's auth client socket: a path (/var/spool/postfix/private/auth) or host:port",
    }),
    service: opt.string({
      default: 'smtp',
      pattern: /^[a-z0-9_-]{1,32}$/i,
      description: 'the service name Dovecot sees',
    }),
    // Dovecot delays requests from an address that failed lately by up to 15 s (auth penalty).
    timeout: opt.number({ default: 30, min: 0.1, max: 120, description: 'seconds Dovecot may take to answer a step' }),
    max_connections: opt.number({
      default: 8,
      min: 1,
      max: 256,
      integer: true,
      description: 'connections to Dovecot at once',
    }),
  },
  // An exchange waits for the client between Dovecot's steps; each wait is the session's.
  timeoutMs: 120_000,
  async setup({ options, net, log, clock }) {
    const target = parseTarget(options.socket, 0)
    const where = describeTarget(target)
    const timeoutMs = Math.round(options.timeout * 1000)
    let mechanisms: readonly DovecotMechanism[] = []
    let lastTry = 0

    const pool = net.pool<Connection>({
      max: options.max_connections,
      idleMs: 60_000,
      async create(signal) {
        const lines = await net.connectLines(target, {
          timeoutMs,
          signal,
          lineEnding: '\n',
          maxLineLength: 65_536,
          peer: `dovecot auth ${where}`,
        })
        try {
          for (const l of clientHello(process.pid)) await lines.send(l)
          const reader = new HandshakeReader()
          for (;;) {
            const done = reader.push(await lines.readLine({ timeoutMs, signal }))
            if (done === undefined) continue
            mechanisms = done.mechanisms
            return { lines, nextId: 1 }
          }
        } catch (e) {
          lines.destroy()
          throw e
        }
      },
      destroy: (c) => c.lines.destroy(),
      isUsable: (c) => c.lines.isOpen,
    })

    /** Opens a connection (learning the mechanisms); failures are for the caller to tell. */
    const warmUp = () => {
      lastTry = clock.now()
      return pool.use(async () => undefined, { timeoutMs })
    }
    try {
      await warmUp()
      log.info(`Dovecot auth at ${where}: ${mechanisms.map((m) => m.name).join(' ')}`)
    } catch (e) {
      log.warn(`Dovecot auth at ${where} unavailable (${(e as Error).message}): AUTH is offered once it answers`)
    }

    type Ending =
      | { readonly kind: 'OK' | 'FAIL'; readonly params: ReadonlyMap<string, string> }
      | { readonly kind: 'ended' }

    /** One AUTH request to Dovecot, its CONT steps relayed over `channel` (none for a password). */
    const exchange = (ctx: HookContext, mechanism: string, initial: Buffer | undefined, channel?: SaslChannel) =>
      pool.use(
        async (c): Promise<Ending> => {
          const id = String(c.nextId++)
          const { local, remote } = ctx.connection
          await c.lines.send(
            authLine({
              id,
              mechanism,
              service: options.service,
              initial,
              secured: ctx.connection.tls !== undefined,
              localIp: local.ip,
              localPort: local.port,
              remoteIp: remote.ip,
              remotePort: remote.port,
              session: ctx.connection.id,
            }),
          )
          for (;;) {
            const line = await c.lines.readLine({ timeoutMs, signal: ctx.signal })
            const reply = parseServerReply(line)
            if (reply === undefined || reply.id !== id)
              throw new Error(`unexpected answer from Dovecot auth: ${JSON.stringify(line.split('\t')[0])}`)
            if (reply.kind !== 'CONT') return reply
            const answer = channel === undefined ? undefined : await channel.challenge(reply.data)
            if (answer === undefined) {
              // No way to cancel a request in the protocol: this connection is done.
              c.lines.destroy()
              return { kind: 'ended' }
            }
            await c.lines.send(contLine(id, answer))
          }
        },
        { timeoutMs, signal: ctx.signal },
      )

    const user = (ctx: HookContext, params: ReadonlyMap<string, string>): AuthVerdict => {
      const name = params.get('user')
      if (name === undefined || name === '') {
        ctx.log.error('Dovecot said OK without a user name')
        return defer()
      }
      ctx.result('pass', `dovecot: ${name}`)
      return authenticated(name)
    }
    const failed = (ctx: HookContext, params: ReadonlyMap<string, string>): boolean => {
      const temp = params.has('temp')
      ctx.result(temp ? 'error' : 'fail', `dovecot: ${temp ? 'temporary failure' : 'refused'}`)
      return temp
    }

    const authPassword: AuthPasswordHook = async (ctx, login) => {
      const plain = Buffer.from(`\0${login.user}\0${login.password}`, 'utf8')
      const r = await exchange(ctx, 'PLAIN', plain)
      if (r.kind === 'OK') return user(ctx, r.params)
      if (r.kind === 'FAIL' && failed(ctx, r.params)) return defer()
      // Dovecot does not tell an unknown user from a wrong password: a later backend may know it.
      return pass('refused by Dovecot')
    }

    const offered = () => mechanisms.filter((m) => !m.flags.includes('private') && !m.name.endsWith('-PLUS'))
    const authMechanisms: AuthMechanismsHook = () => {
      if (mechanisms.length === 0 && clock.now() - lastTry > RETRY_MS) warmUp().catch(() => undefined)
      return offered().map((m) => m.name)
    }

    const authSasl: AuthSaslHook = async (ctx, channel) => {
      if (!offered().some((m) => m.name === channel.mechanism)) return pass()
      const r = await exchange(ctx, channel.mechanism, channel.initialResponse, channel)
      if (r.kind === 'ended') return reject()
      if (r.kind === 'FAIL') return failed(ctx, r.params) ? defer() : reject()
      // Success data (SCRAM's server-final message) goes out as a last challenge (RFC 4954 §4).
      const final = r.params.get('resp')
      if (final !== undefined && final !== '') {
        const empty = await channel.challenge(Buffer.from(final, 'base64'))
        if (empty === undefined || empty.length > 0) return reject()
      }
      return user(ctx, r.params)
    }

    return { hooks: { authPassword, authMechanisms, authSasl }, close: () => pool.close() }
  },
})
