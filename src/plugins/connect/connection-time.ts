/**
 * connect/connection-time (qpsmtpd `connection_time`): logs how long each connection lasted,
 * from accept to the end (`12.345 s.`), at LOGINFO or the plugin's `loglevel`. qpsmtpd's one
 * bare argument is the level.
 */
import { definePlugin } from '../../host/define-plugin.ts'
import type { PostConnectionHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'

export default definePlugin({
  name: 'connect/connection-time',
  aliases: ['connection_time'],
  description: 'log the duration of each connection',
  options: { loglevel: opt.loglevel() },
  // qpsmtpd: `connection_time LOGNOTICE` (one bare argument) sets the level.
  translateArgs: (args) => (args.length === 1 ? ['loglevel', ...args] : args),
  timeoutMs: 1_000,
  onFailure: 'pass',
  setup() {
    const postConnection: PostConnectionHook = (ctx) => {
      const seconds = (Date.now() - ctx.connection.startedAt.getTime()) / 1000
      ctx.log.info(`${seconds.toFixed(3)} s.`)
    }
    return { hooks: { postConnection } }
  },
})
