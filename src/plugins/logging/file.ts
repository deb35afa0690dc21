/**
 * logging/file: appends log entries to a file (qpsmtpd `logging/file [loglevel L] [reopen]
 * [nosplit] [tsformat fmt] path`). The path may hold strftime conversions and %i (the session
 * id): a new name opens a new file. Lines are `<tsformat> <host>[<pid>]: <session> (<hook>)
 * <plugin>: <message>`. Writes are buffered in WriteStreams (never blocking the event loop);
 * past 8 MiB of unwritten output entries are dropped and counted.
 * Security: `|command` outputs are refused at start-up: plugins never run a shell.
 */
import { createWriteStream, constants as fsConstants, type WriteStream } from 'node:fs'
import { access, stat } from 'node:fs/promises'
import { hostname } from 'node:os'
import { dirname, sep } from 'node:path'
import { definePlugin } from '../../host/define-plugin.ts'
import type { LogEntry } from '../../host/logger.ts'
import { opt } from '../../host/options.ts'
import { logLevelOption, qpsmtpdPrefix } from './format.ts'
import { strftime } from './strftime.ts'

const MAX_OPEN_FILES = 32
const MAX_BUFFERED = 8 * 1024 * 1024
const MAX_SESSIONS = 100_000

/** qpsmtpd's syntax: leading keywords, then everything else (joined by spaces) is the path. */
export function translateFileArgs(args: readonly string[]): string[] {
  const out: string[] = []
  let i = 0
  for (; i < args.length; i++) {
    const a = (args[i] as string).toLowerCase()
    if (a === 'reopen' || a === 'nosplit') out.push(a, '1')
    else if (a === 'loglevel' || a === 'tsformat') {
      if (args[i + 1] === undefined) throw new Error(`option "${a}" needs a value`)
      out.push(a, args[++i] as string)
    } else break
  }
  if (i < args.length) out.push('path', args.slice(i).join(' '))
  return out
}

/**
 * The log directory must exist and be writable now, not at the first write (which would only
 * reach stderr): a missing /var/log/qpsmtpd stops the start with the config line. It is not
 * created: its owner, group and mode are the package's or systemd's (`LogsDirectory=`) to set.
 * With conversions in the directory part, the fixed part before them is checked.
 */
async function checkLogDirectory(pattern: string): Promise<void> {
  const parts = dirname(pattern).split(sep)
  const firstConversion = parts.findIndex((p) => p.includes('%'))
  const fixed = firstConversion < 0 ? dirname(pattern) : parts.slice(0, firstConversion).join(sep) || sep
  const info = await stat(fixed).catch(() => undefined)
  if (info === undefined)
    throw new Error(
      `log directory ${fixed} does not exist: create it, writable by the user qtsmtpd runs as ` +
        '(with systemd: LogsDirectory=)',
    )
  if (!info.isDirectory()) throw new Error(`log directory ${fixed} is not a directory`)
  if (firstConversion >= 0) return
  const who = `the user qtsmtpd runs as (uid ${process.getuid?.() ?? '?'})`
  const fileExists = !pattern.includes('%') && (await stat(pattern).catch(() => undefined)) !== undefined
  if (fileExists)
    await access(pattern, fsConstants.W_OK).catch(() => {
      throw new Error(`log file ${pattern} is not writable by ${who}`)
    })
  else
    await access(fixed, fsConstants.W_OK | fsConstants.X_OK).catch(() => {
      throw new Error(`log directory ${fixed} is not writable by ${who}`)
    })
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
  },
  translateArgs: translateFileArgs,
  async setup({ name, options, paths }) {
    const level = logLevelOption(options.loglevel)
    const given = options.path.trim()
    if (given.startsWith('|'))
      throw new Error(
        `"|command" log outputs are not supported (plugins never run a shell): log to a file, or to a FIFO read by another process`,
      )
    if (given === '') throw new Error('option "path" is empty')
    const pattern = paths.resolve(given)
    await checkLogDirectory(pattern)
    const host = hostname()
    const streams = new Map<string, WriteStream>() // insertion order = least recently used first
    const sessionFile = new Map<string, string>()
    const reopened = new Set<string>()
    const failed = new Set<string>()
    let dropped = 0

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

    const close = (file: string) => {
      streams.get(file)?.end()
      streams.delete(file)
    }

    const open = (file: string): WriteStream => {
      while (streams.size >= MAX_OPEN_FILES) close(streams.keys().next().value as string)
      const s = createWriteStream(file, { flags: 'a', mode: 0o640 })
      s.on('error', (err) => {
        // Not through the logger: that would come straight back here.
        if (!failed.has(file)) process.stderr.write(`${name}: cannot write ${file}: ${err.message}\n`)
        failed.add(file)
        if (streams.get(file) === s) streams.delete(file)
      })
      s.on('open', () => failed.delete(file))
      streams.set(file, s)
      return s
    }

    const logging = (e: LogEntry): void => {
      if (e.level > level || e.plugin === name) return
      const file = fileFor(e)
      if (options.reopen && e.connection !== undefined && !reopened.has(e.connection)) {
        if (reopened.size >= MAX_SESSIONS) reopened.clear()
        reopened.add(e.connection)
        close(file)
      }
      let s = streams.get(file)
      if (s === undefined) s = open(file)
      else {
        streams.delete(file)
        streams.set(file, s)
      }
      if (s.writableLength > MAX_BUFFERED) {
        dropped++
        return
      }
      const stamp = `${strftime(options.tsformat, e.time)} ${host}[${process.pid}]:`
      if (dropped > 0) {
        s.write(`${stamp} ${name}: ${dropped} log entries dropped (output too slow)\n`)
        dropped = 0
      }
      s.write(`${stamp}${qpsmtpdPrefix(e)} ${e.message}\n`)
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
          if (pattern.includes('%i')) close(file)
        },
      },
      close: async () => {
        const ending = [...streams.values()].map((s) => new Promise<void>((resolve) => s.end(() => resolve())))
        streams.clear()
        await Promise.all(ending)
      },
    }
  },
})
