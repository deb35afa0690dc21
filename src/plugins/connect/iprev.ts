/**
 * connect/iprev: the forward-confirmed reverse DNS of the client (RFC 8601 §3), reported as
 * `iprev=` in Authentication-Results of every message of the connection. A confirmed name
 * becomes the connection's verified host name (the Received line's `from` shows it) unless a
 * plugin set one already. Reports only, never refuses; a DNS failure is `iprev=temperror`.
 * The check is fcrdns's: when fcrdns ran first (and reported iprev itself), its result is used.
 */
import { definePlugin } from '../../host/define-plugin.ts'
import type { ConnectHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import { addAuthResult, authResultsFor } from '../../mailauth/auth-results.ts'
import { iprevAuthResult } from '../../mailauth/iprev.ts'
import { checkFcrdns, Fcrdns } from './fcrdns.ts'

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
      const check = ctx.get(Fcrdns) ?? (await checkFcrdns(dns, ctx.connection.remote.ip, { signal: ctx.signal }))
      if (authResultsFor(ctx, 'iprev').length === 0) addAuthResult(ctx, iprevAuthResult(check))
      if (check.result === 'pass' && ctx.connection.remoteHost === undefined) ctx.connection.remoteHost = check.names[0]
      ctx.result(check.result === 'pass' ? 'pass' : 'info', `${check.result} ${check.names.join(' ')}`.trim())
      return pass()
    }
    return { hooks: { connect } }
  },
})
