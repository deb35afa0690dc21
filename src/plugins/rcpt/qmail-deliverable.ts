/**
 * rcpt/qmail-deliverable (qpsmtpd `qmail_deliverable`): asks qmail-deliverabled, over its
 * HTTP protocol (`GET /qd1/deliverable?<address>` → the status as a number), whether a
 * recipient exists on the qmail host, and refuses those that do not (550 5.1.1). `server
 * host:port` (default 127.0.0.1:8998), or `smtproutes:[host:]port` to ask the host that
 * qmail's smtproutes names for the recipient's domain (none: not checked). A mailing list
 * (ezmlm) refuses the null sender. When the daemon cannot answer (down, slow, broken), the
 * recipient gets a 451 (`on_error defer`, the default) instead of qpsmtpd's silent accept;
 * `on_error pass` restores that. Relay clients and whitelisted senders are not checked.
 */
import { request } from 'node:http'
import type { ConfigLine } from '../../config/config-dir.ts'
import { adjustKarma, isImmune, rejectAs, rejectOptions } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { RcptHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { defer, pass, reject } from '../../host/verdict.ts'

// Qmail::Deliverable's status codes (the ones that change what we answer).
const NOT_DELIVERABLE = 0x00
const EZMLM_LIST = 0x14
const CLIENT_FAILURE = 0x2f

/** Qmail::Deliverable::Client's address check: atext words joined by `@` and `.`, one `@` at most. */
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
const VALID = new RegExp(`^(?!.*@.*@)(${ATEXT}+(?:[@.]${ATEXT}+)*)\\.?$`)

/** URI::Escape's default: everything but unreserved characters is %XX. */
const uriEscape = (s: string): string =>
  Array.from(Buffer.from(s, 'utf8'))
    .map((b) =>
      /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('')

/** `domain:relay[:port]` lines of qmail's smtproutes: the relay host for each domain or `.suffix`. */
function parseSmtproutes(lines: readonly ConfigLine[]): ReadonlyMap<string, string> {
  const routes = new Map<string, string>()
  for (const { text } of lines) {
    const m = /^(.*?):\[?([^\]:\s]*)/.exec(text)
    if (m) routes.set((m[1] ?? '').toLowerCase(), m[2] ?? '')
  }
  return routes
}

/** qpsmtpd's _smtproute: the exact domain, then `.parent` wildcards from the longest, then the default route. */
function routeFor(routes: ReadonlyMap<string, string>, domain: string): string | undefined {
  const parts = domain.split('.')
  const candidates = [domain, ...parts.map((_, i) => `.${parts.slice(i).join('.')}`), '']
  for (const c of candidates) {
    const host = routes.get(c)
    if (host !== undefined) return host === '' ? undefined : host
  }
  return undefined
}

function parseServer(spec: string): {
  readonly smtproutes: boolean
  readonly host: string | undefined
  readonly port: number
} {
  const routed = spec.startsWith('smtproutes:')
  const rest = routed ? spec.slice('smtproutes:'.length) : spec
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(rest)
  const port = Number(m?.[2])
  if (m === null || port < 1 || port > 65535 || (!routed && !m[1]))
    throw new Error(`server: expected host:port or smtproutes:[host:]port, got "${spec}"`)
  return { smtproutes: routed, host: m[1]?.replace(/^\[(.*)\]$/, '$1') || undefined, port }
}

export default definePlugin({
  name: 'rcpt/qmail-deliverable',
  aliases: ['qmail_deliverable', 'check_qmail_deliverable'],
  description: 'refuse recipients that qmail-deliverabled says do not exist',
  options: {
    server: opt.string({ default: '127.0.0.1:8998', description: 'host:port, or smtproutes:[host:]port' }),
    vpopmail_ext: opt.boolean({
      default: false,
      description: "accepted for qpsmtpd configurations; it is the daemon's setting",
    }),
    timeout: opt.number({ default: 5, min: 0.1, max: 60, description: 'seconds for one request to the daemon' }),
    on_error: opt.enum(['defer', 'pass'], {
      default: 'defer',
      description: 'when the daemon cannot answer: 451, or accept as qpsmtpd',
    }),
    ...rejectOptions,
  },
  timeoutMs: 65_000,
  setup({ options, config }) {
    const server = parseServer(options.server)
    const routes = server.smtproutes ? config.live('smtproutes', parseSmtproutes) : undefined

    /** The daemon's status for an address, or CLIENT_FAILURE. */
    const ask = (host: string, address: string, signal: AbortSignal): Promise<number> =>
      new Promise((resolve) => {
        const req = request(
          {
            host,
            port: server.port,
            path: `/qd1/deliverable?${uriEscape(address)}`,
            signal,
            timeout: options.timeout * 1000,
          },
          (res) => {
            let body = ''
            res.setEncoding('utf8')
            res.on('data', (chunk: string) => {
              body += chunk
              if (body.length > 64) req.destroy()
            })
            res.on('end', () =>
              resolve(res.statusCode === 200 && /^\d+$/.test(body.trim()) ? Number(body.trim()) : CLIENT_FAILURE),
            )
            res.on('error', () => resolve(CLIENT_FAILURE))
          },
        )
        req.on('timeout', () => req.destroy())
        req.on('error', () => resolve(CLIENT_FAILURE))
        req.end()
      })

    const rcpt: RcptHook = async (ctx, to) => {
      if (isImmune(ctx)) {
        ctx.result('skip', 'immune')
        return pass()
      }
      const { local, domain } = to.address
      const address = domain === undefined ? local.toLowerCase() : `${local}@${domain}`.toLowerCase()
      if (!VALID.test(address)) {
        ctx.result('skip', 'address the daemon cannot check')
        return pass()
      }
      const host =
        routes === undefined ? server.host : (routeFor(routes.current(), domain?.toLowerCase() ?? '') ?? server.host)
      if (host === undefined) {
        ctx.result('skip', 'no server for the domain')
        return pass()
      }
      const status = await ask(host, address, ctx.signal)
      if (status === CLIENT_FAILURE) {
        ctx.log.warn(`qmail-deliverabled at ${host}:${server.port} did not answer for ${address}`)
        ctx.result('error', 'daemon unreachable or broken')
        if (options.on_error === 'pass') return pass()
        return defer({ code: 451, enhanced: '4.3.0', text: 'Cannot check the recipient now, try again later' })
      }
      if (status === EZMLM_LIST && ctx.transaction.mailFrom.address === null) {
        adjustKarma(ctx, -1)
        ctx.result('fail', 'ezmlm list, null sender')
        return reject({ code: 550, enhanced: '5.7.1', text: 'mailing lists do not accept null senders' })
      }
      if (status !== NOT_DELIVERABLE) {
        ctx.result('pass', `status 0x${status.toString(16).padStart(2, '0')}`)
        return pass()
      }
      adjustKarma(ctx, -1)
      return rejectAs(ctx, options, 'Sorry, no mailbox by that name. qd', {
        perm: [550, '5.1.1'],
        temp: [450, '4.1.1'],
      })
    }

    return { hooks: { rcpt } }
  },
})
