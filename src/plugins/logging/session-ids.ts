/**
 * What logging/connection_id and logging/transaction_id share: qpsmtpd's demo plugins that log
 * to stderr as logging/warn does, each line led by an id instead of the process id:
 * `<id> <plugin> plugin: <message>` (qpsmtpd's older prefix), `???` when the entry has none.
 */
import type { PluginDefinition } from '../../host/define-plugin.ts'
import type { LogEntry } from '../../host/logger.ts'
import { opt } from '../../host/options.ts'
import { logLevelOption, olderPrefix } from './format.ts'

export const idLine = (id: string | undefined, e: LogEntry): string => `${id ?? '???'}${olderPrefix(e)} ${e.message}\n`

const options = {
  loglevel: opt.string({ positional: 0, default: '4', description: 'highest level written (0-7 or LOGxxx)' }),
}

export function idLogger(
  name: string,
  alias: string,
  description: string,
  idOf: (e: LogEntry) => string | undefined,
): PluginDefinition<typeof options> {
  return {
    name,
    aliases: [alias],
    description,
    options,
    setup({ name: instance, options }) {
      const level = logLevelOption(options.loglevel)
      return {
        hooks: {
          logging: (e) => {
            if (e.level > level || e.plugin === instance) return
            process.stderr.write(idLine(idOf(e), e))
          },
        },
      }
    },
  }
}
