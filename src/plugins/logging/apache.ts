/**
 * logging/apache: log entries in Apache's error log format, to a file. qpsmtpd's logging/apache
 * ran only inside Apache under mod_perl (Apache::Qpsmtpd) and wrote through Apache2::Log to the
 * virtual host's ErrorLog at Apache's LogLevel; qtsmtpd is its own server, not an Apache module,
 * so the ErrorLog file is the argument and the level is `loglevel`:
 * `[Wed Nov 25 16:43:40.123000 2026] [perl:warn] [pid 12345] <session> <plugin> plugin: <message>`.
 * Without a file the start stops, saying so. Files go through LogFiles (reopened on SIGUSR1).
 */
import { definePlugin } from '../../host/define-plugin.ts'
import { type LogEntry, type LogLevel, LogLevels } from '../../host/logger.ts'
import { opt } from '../../host/options.ts'
import { logLevelOption, olderPrefix } from './format.ts'
import { checkLogDirectory, LogFiles } from './log-files.ts'
import { strftime } from './strftime.ts'

const apacheLevels = Object.fromEntries(Object.entries(LogLevels).map(([k, v]) => [v, k])) as Record<LogLevel, string>

/** Apache 2.4's default ErrorLogFormat time, `%{u}t`: local time with microseconds. */
const apacheTime = (d: Date): string => strftime(`%a %b %d %T.${String(d.getMilliseconds()).padStart(3, '0')}000 %Y`, d)

export const apacheLine = (e: LogEntry, pid: number = process.pid): string =>
  `[${apacheTime(e.time)}] [perl:${apacheLevels[e.level]}] [pid ${pid}] ${e.connection ?? '-'}${olderPrefix(e)} ${e.message}\n`

/** `[loglevel L] PATH`: the keyword first, then the path (the rest of the line, spaces kept). */
export function translateApacheArgs(args: readonly string[]): string[] {
  const [first, level, ...rest] = args
  if (first?.toLowerCase() === 'loglevel') {
    if (level === undefined) throw new Error('option "loglevel" needs a value')
    return ['loglevel', level, ...(rest.length > 0 ? ['path', rest.join(' ')] : [])]
  }
  return args.length > 0 ? ['path', args.join(' ')] : []
}

export default definePlugin({
  name: 'logging/apache',
  description: "log entries to a file in Apache's error log format",
  options: {
    path: opt.optionalString({ positional: 0, description: "the file, where Apache's ErrorLog was" }),
    loglevel: opt.string({ default: '4', description: "highest level written, as Apache's LogLevel" }),
  },
  translateArgs: translateApacheArgs,
  async setup({ name, options, paths }) {
    const level = logLevelOption(options.loglevel)
    const given = options.path?.trim() ?? ''
    if (given === '')
      throw new Error(
        "qpsmtpd's logging/apache wrote to Apache's ErrorLog through mod_perl (Apache::Qpsmtpd), and qtsmtpd " +
          'is not an Apache module: name the file to write, as in "logging/apache /var/log/qtsmtpd/error.log", ' +
          'or use logging/file or logging/syslog',
      )
    if (given.startsWith('|'))
      throw new Error('"|command" log outputs are not supported (plugins never run a shell): log to a file')
    const file = paths.resolve(given)
    await checkLogDirectory(file)
    const files = new LogFiles({
      name,
      droppedNotice: (count) =>
        apacheLine({
          level: 4,
          time: new Date(),
          message: `${count} log entries dropped (output too slow)`,
          plugin: name,
        }),
    })
    return {
      hooks: {
        logging: (e) => {
          if (e.level > level || e.plugin === name) return
          files.write(file, apacheLine(e))
        },
      },
      reopenLogs: () => files.reopen(),
      close: () => files.close(),
    }
  },
})
