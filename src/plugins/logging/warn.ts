/**
 * logging/warn: writes log entries at or below a level to stderr in qpsmtpd's format,
 * `<pid> <session> (<hook>) <plugin>: <message>` (qpsmtpd `logging/warn [loglevel]`), or
 * pino's JSON lines with `format json`. Loading any logging plugin replaces the built-in
 * stderr output. Entries the plugin itself logs are skipped, as in qpsmtpd, so it never feeds
 * on its own output.
 */
import { definePlugin } from '../../host/define-plugin.ts'
import { pinoLine } from '../../host/log-json.ts'
import type { LogEntry } from '../../host/logger.ts'
import { opt } from '../../host/options.ts'
import { formatOption, formatOptionSpec, logLevelOption, qpsmtpdPrefix } from './format.ts'

export const warnLine = (e: LogEntry, pid: number = process.pid): string => `${pid}${qpsmtpdPrefix(e)} ${e.message}\n`

export default definePlugin({
  name: 'logging/warn',
  description: 'log entries to stderr, qpsmtpd format',
  options: {
    loglevel: opt.string({ positional: 0, default: '4', description: 'highest level written (0-7 or LOGxxx)' }),
    format: formatOptionSpec,
  },
  setup({ name, options, server }) {
    const level = logLevelOption(options.loglevel)
    const line = formatOption(options.format, server.logFormat) === 'json' ? pinoLine : warnLine
    return {
      hooks: {
        logging: (e) => {
          if (e.level > level || e.plugin === name) return
          process.stderr.write(line(e))
        },
      },
    }
  },
})
