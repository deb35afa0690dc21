/**
 * connect/iprev: the forward-confirmed reverse DNS of the client (RFC 8601 §3), reported as
 * `iprev=` in Authentication-Results of every message of the connection. A confirmed name
 * becomes the connection's verified host name (the Received line's `from` shows it) unless a
 * plugin set one already. Reports only, never refuses; a DNS failure is `iprev=temperror`.
 * (qpsmtpd's `fcrdns` computes the same and refuses through `reject`; issue 12 brings it.)
 */
import { definePlugin } from '../../host/define-plugin.ts'
import type { ConnectHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import { addAuthResult } from '../../mailauth/auth-results.ts'
import { checkIprev, iprevAuthResult } from '../../mailauth/iprev.ts'

export default definePlugin({
  name: 'connect/iprev',
  aliases: ['iprev'],
  description: 'forward-confirmed reverse DNS, reported as iprev in Authentication-Results',
  options: { loglevel: opt.loglevel() },
  requires: ['dns'],
  timeoutMs: 15_000,
  // Only a report: a plugin that fails leaves no iprev result rather than refusing the client.
  onFailure: 'pass',
  setup(api) {
    const dns = api.dns
    const connect: ConnectHook = async (ctx) => {
      const check = await checkIprev(dns, ctx.connection.remote.ip, ctx.signal)
      addAuthResult(ctx, iprevAuthResult(check))
      if (check.result === 'pass' && ctx.connection.remoteHost === undefined) ctx.connection.remoteHost = check.names[0]
      ctx.result(check.result === 'pass' ? 'pass' : 'info', `${check.result} ${check.names.join(' ')}`.trim())
      return pass()
    }
    return { hooks: { connect } }
  },
})
