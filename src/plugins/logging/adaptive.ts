/**
 * logging/adaptive: brief logs for sessions that go well, detailed ones for sessions that do not
 * (qpsmtpd `logging/adaptive [accept L] [reject L] [prefix C]`), to stderr. Entries at or under
 * `accept` are written at once. Those above it, up to `reject`, are kept per session and written
 * only once the session goes badly: a plugin refuses something (the deny hook, as in qpsmtpd), or
 * the core answers 4xx/5xx (its `refused` line: its own refusals and plugins' failures).
 * From then on the session's entries up to `reject` are written at once; a session that ends well
 * drops what was kept. Detail lines carry `prefix` after the pid, so `grep -v` gives the brief log.
 * Memory: at most `buffer` bytes kept per session, the oldest dropped first (and counted).
 */
import { definePlugin } from '../../host/define-plugin.ts'
import { pinoLine } from '../../host/log-json.ts'
import type { LogEntry } from '../../host/logger.ts'
import { opt } from '../../host/options.ts'
import { formatOption, formatOptionSpec, logLevelOption, qpsmtpdPrefix } from './format.ts'

/** Sessions whose end is remembered, for the entries the core logs after the disconnect hook. */
const ENDED_KEPT = 1000
/** Live sessions with kept entries; past this, the oldest session's entries are dropped. */
const MAX_SESSIONS = 10_000

interface Kept {
  entries: LogEntry[]
  bytes: number
  dropped: number
}

export default definePlugin({
  name: 'logging/adaptive',
  description: 'log in detail only the sessions that get a refusal or an error',
  options: {
    accept: opt.string({ default: 'LOGERROR', description: 'highest level written for every session' }),
    reject: opt.string({ default: 'LOGWARN', description: 'highest level written for a session that went badly' }),
    prefix: opt.string({ default: '`', description: 'marks the detail lines, after the pid' }),
    buffer: opt.number({ default: 65_536, min: 0, integer: true, description: 'bytes of entries kept per session' }),
    format: formatOptionSpec,
  },
  setup({ name, options, server }) {
    const accept = logLevelOption(options.accept)
    const reject = logLevelOption(options.reject)
    const json = formatOption(options.format, server.logFormat) === 'json'
    const kept = new Map<string, Kept>()
    const bad = new Set<string>()
    const ended = new Map<string, boolean>() // session → went badly

    const write = (e: LogEntry, detail: boolean): void => {
      process.stderr.write(
        json ? pinoLine(e) : `${process.pid}${detail ? ` ${options.prefix}` : ''}${qpsmtpdPrefix(e)} ${e.message}\n`,
      )
    }

    const wentBadly = (session: string): void => {
      if (bad.has(session)) return
      bad.add(session)
      const k = kept.get(session)
      kept.delete(session)
      if (k === undefined) return
      if (k.dropped > 0)
        write(
          {
            level: 4,
            time: new Date(),
            message: `${k.dropped} earlier entries dropped`,
            connection: session,
            plugin: name,
          },
          true,
        )
      for (const e of k.entries) write(e, true)
    }

    const keep = (session: string, e: LogEntry): void => {
      let k = kept.get(session)
      if (k === undefined) {
        if (kept.size >= MAX_SESSIONS) kept.delete(kept.keys().next().value as string)
        k = { entries: [], bytes: 0, dropped: 0 }
        kept.set(session, k)
      }
      k.entries.push(e)
      k.bytes += e.message.length
      while (k.bytes > options.buffer && k.entries.length > 0) {
        k.bytes -= (k.entries.shift() as LogEntry).message.length
        k.dropped++
      }
    }

    const logging = (e: LogEntry): void => {
      if (e.plugin === name || e.level > reject) return
      const session = e.connection
      if (session === undefined) return void (e.level <= accept && write(e, false))
      // The core's line for a 4xx/5xx reply: its own refusals, and plugins' failures (451).
      const refusal = e.plugin === undefined && e.message.startsWith('refused ')
      const over = ended.get(session)
      if (over === undefined && refusal) wentBadly(session)
      if (e.level <= accept) write(e, false)
      else if (over === true || bad.has(session)) write(e, true)
      else if (over === undefined) keep(session, e)
    }

    return {
      hooks: {
        logging,
        deny: (ctx) => wentBadly(ctx.connection.id),
        disconnect: (ctx) => {
          const session = ctx.connection.id
          if (ended.size >= ENDED_KEPT) ended.delete(ended.keys().next().value as string)
          ended.set(session, bad.delete(session))
          kept.delete(session)
        },
      },
    }
  },
})
