/**
 * connect/loadcheck (qpsmtpd `loadcheck`): refuses connections with a 421 while the 1-minute
 * load average is above `max_load` (default 7), read from /proc/loadavg (or the system's
 * figure where there is none) and kept for `cache_time` seconds. qpsmtpd's `uptime` argument
 * is accepted and not used: no program is ever run to learn the load.
 */
import { readFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { definePlugin } from '../../host/define-plugin.ts'
import type { ConnectHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { defer, pass } from '../../host/verdict.ts'

export default definePlugin({
  name: 'connect/loadcheck',
  aliases: ['loadcheck'],
  description: 'refuse connections (421) while the 1-minute load average is above max_load',
  options: {
    max_load: opt.number({
      default: 7,
      min: 0,
      description: '1-minute load average above which connections are refused',
    }),
    cache_time: opt.number({ default: 10, min: 0, description: 'seconds a load reading is reused' }),
    loadavg: opt.string({ default: '/proc/loadavg', description: 'where the load average is read' }),
    uptime: opt.string({ default: '/usr/bin/uptime', description: 'accepted for qpsmtpd configurations; not run' }),
    loglevel: opt.loglevel(),
  },
  timeoutMs: 2_000,
  onFailure: 'pass',
  setup({ options }) {
    let load = 0
    let readAt = Number.NEGATIVE_INFINITY

    const readLoad = async (): Promise<number> => {
      const text = await readFile(options.loadavg, 'utf8').catch(() => undefined)
      const first = Number(text?.split(/\s+/)[0])
      return text !== undefined && Number.isFinite(first) ? first : (loadavg()[0] ?? 0)
    }

    const connect: ConnectHook = async (ctx) => {
      if (Date.now() - readAt > options.cache_time * 1000) {
        load = await readLoad()
        readAt = Date.now()
      }
      if (load > options.max_load) {
        ctx.log.error(`local load too high: ${load}`)
        ctx.result('fail', `load ${load}`)
        return defer('Server load too high, please try again later.')
      }
      ctx.result('pass', `load ${load}`)
      return pass()
    }

    return { hooks: { connect } }
  },
})
