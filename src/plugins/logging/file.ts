/**
 * logging/file: appends log entries to a file (qpsmtpd `logging/file [loglevel L] [reopen]
 * [nosplit] [tsformat fmt] path`). The path may hold strftime conversions and %i (the session
 * id): a new name opens a new file. Lines are `<tsformat> <host>[<pid>]: <session> (<hook>)
 * <plugin>: <message>`, or pino's JSON lines with `format json`. Files are written through
 * LogFiles (buffered, bounded, reopened on SIGUSR1).
 * Security: `|command` outputs are refused at start-up: plugins never run a shell.
 */
import { hostname } from 'node:os'
import { definePlugin } from '../../host/define-plugin.ts'
import { pinoLine } from '../../host/log-json.ts'
import type { LogEntry } from '../../host/logger.ts'
import { opt } from '../../host/options.ts'
import { formatOption, formatOptionSpec, logLevelOption, qpsmtpdPrefix } from './format.ts'
import { checkLogDirectory, LogFiles } from './log-files.ts'
import { strftime } from './strftime.ts'

const MAX_SESSIONS = 100_000

/** qpsmtpd's syntax: leading keywords, then everything else (joined by spaces) is the path. */
export function translateFileArgs(args: readonly string[]): string[] {
  const out: string[] = []
  let i = 0
  for (; i < args.length; i++) {
    const a = (args[i] as string).toLowerCase()
    if (a === 'reopen' || a === 'nosplit') out.push(a, '1')
    else if (a === 'loglevel' || a === 'tsformat' || a === 'format') {
      if (args[i + 1] === undefined) throw new Error(`option "${a}" needs a value`)
      out.push(a, args[++i] as string)
    } else break
  }
  if (i < args.length) out.push('path', args.slice(i).join(' '))
  return out
}

export default definePlugin({
  name: 'logging/file',
  description: 'log entries to a file, qpsmtpd format, strftime and %i in the path',
  options: {
    path: opt.string({ positional: 0, description: 'log file; strftime conversions and %i allowed' }),
    loglevel: opt.string({ default: '4', description: 'highest level written (0-7 or LOGxxx)' }),
    reopen: opt.boolean({ default: false, description: 'reopen the file at the first entry of each session' }),
    nosplit: opt.boolean({ default: false, description: "keep a session's entries in the file it started in" }),
    tsformat: opt.string({ default: '%a %b %d %T %Y', description: 'strftime format of the time stamp' }),
    format: formatOptionSpec,
  },
  translateArgs: translateFileArgs,
  async setup({ name, options, paths, server }) {
    const level = logLevelOption(options.loglevel)
    const format = formatOption(options.format, server.logFormat)
    const given = options.path.trim()
    if (given.startsWith('|'))
      throw new Error(
        `"|command" log outputs are not supported (plugins never run a shell): log to a file, or to a FIFO read by another process`,
      )
    if (given === '') throw new Error('option "path" is empty')
    const pattern = paths.resolve(given)
    await checkLogDirectory(pattern)
    const host = hostname()
    const stamp = (time: Date) => `${strftime(options.tsformat, time)} ${host}[${process.pid}]:`
    const files = new LogFiles({
      name,
      droppedNotice: (count) => {
        const message = `${count} log entries dropped (output too slow)`
        return format === 'json'
          ? pinoLine({ level: 4, time: new Date(), message, plugin: name })
          : `${stamp(new Date())} ${name}: ${message}\n`
      },
    })
    const sessionFile = new Map<string, string>()
    const reopened = new Set<string>()

    const fileFor = (e: LogEntry): string => {
      const session = e.connection
      const known = session === undefined ? undefined : sessionFile.get(session)
      if (options.nosplit && known !== undefined) return known
      // The id comes from the core; kept to a safe file-name alphabet all the same.
      const id = (session ?? 'parent').replace(/[^A-Za-z0-9._-]/g, '_')
      const file = strftime(pattern.replace(/%i/g, id), e.time)
      if (options.nosplit && session !== undefined) {
        if (sessionFile.size >= MAX_SESSIONS) sessionFile.clear()
        sessionFile.set(session, file)
      }
      return file
    }

    const logging = (e: LogEntry): void => {
      if (e.level > level || e.plugin === name) return
      const file = fileFor(e)
      if (options.reopen && e.connection !== undefined && !reopened.has(e.connection)) {
        if (reopened.size >= MAX_SESSIONS) reopened.clear()
        reopened.add(e.connection)
        files.end(file)
      }
      files.write(file, format === 'json' ? pinoLine(e) : `${stamp(e.time)}${qpsmtpdPrefix(e)} ${e.message}\n`)
    }

    return {
      hooks: {
        logging,
        disconnect: (ctx) => {
          const id = ctx.connection.id
          const file = sessionFile.get(id) ?? fileFor({ level: 0, time: new Date(), message: '', connection: id })
          sessionFile.delete(id)
          reopened.delete(id)
          // A per-session file (%i) is finished when its session is.
          if (pattern.includes('%i')) files.end(file)
        },
      },
      reopenLogs: () => files.reopen(),
      close: () => files.close(),
    }
  },
})
