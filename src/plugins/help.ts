/**
 * help (qpsmtpd `help`): answers `HELP <command>` (RFC 5321 §4.1.1.8) from files, or refuses
 * HELP with 502 5.5.1 when `not_implemented 1`. Files: `help_dir DIR` holds one file per command
 * (`DIR/mail`), and any other `COMMAND file` argument pair names a command's file (a name without
 * `/` is looked up in `help/`). Relative paths are relative to the directory holding the config
 * directory; with no arguments `help_dir` is `help`. Files are read at start-up (reload re-reads).
 * Bare HELP gets the core's command list; a command without a file gets "No help available".
 * Security: the command name is never used as a path; only names read at start-up answer.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { definePlugin } from '../host/define-plugin.ts'
import type { HookMap } from '../host/hook-map.ts'
import { opt } from '../host/options.ts'
import { accept, pass, reject } from '../host/verdict.ts'

const COMMAND = /^\w{1,32}$/
const FILE = /^[\w./-]+$/
/** Reply lines stay well under RFC 5321's 512 octets; a help text is short. */
const MAX_LINE = 400
const MAX_LINES = 100
const MAX_FILES = 200

/** Printable text lines from a help file: CR, controls and overlong lines cannot reach the wire. */
function helpLines(text: string): string[] {
  const lines = text
    .split('\n')
    .map((l) =>
      l
        .replace(/\r$/, '')
        .replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '')
        .replace(/\t/g, ' '),
    )
    .map((l) => (l.length > MAX_LINE ? l.slice(0, MAX_LINE) : l))
    .slice(0, MAX_LINES)
  while (lines.length > 0 && lines[lines.length - 1]?.trim() === '') lines.pop()
  return lines
}

/** qpsmtpd takes `COMMAND file` pairs besides its two options; they become one `commands` list. */
function translateArgs(args: readonly string[]): readonly string[] {
  const out: string[] = []
  const pairs: string[] = []
  for (let i = 0; i < args.length; i += 2) {
    const key = args[i] as string
    const value = args[i + 1]
    if (value === undefined) throw new Error(`argument "${key}" needs a value`)
    if (key === 'not_implemented' || key === 'help_dir' || key === 'commands') out.push(key, value)
    else pairs.push(`${key}=${value}`)
  }
  if (pairs.length > 0) out.push('commands', pairs.join(','))
  return out
}

export default definePlugin({
  name: 'help',
  description: 'HELP replies from files, or 502 when not implemented',
  translateArgs,
  options: {
    not_implemented: opt.boolean({ default: false, description: 'answer HELP with 502 5.5.1' }),
    help_dir: opt.optionalString({ description: 'directory with one help file per command (default help)' }),
    commands: opt.list({ default: [], description: 'COMMAND=file pairs (qpsmtpd: COMMAND file arguments)' }),
  },
  setup({ options, log, paths }) {
    const texts = new Map<string, string[]>()

    const read = (file: string): string[] | undefined => {
      try {
        if (!statSync(file).isFile()) return undefined
        return helpLines(readFileSync(file, 'utf8').slice(0, MAX_LINE * MAX_LINES))
      } catch (e) {
        log.warn(`cannot read help file ${file}: ${(e as Error).message}`)
        return undefined
      }
    }

    const dirOption = options.help_dir ?? (options.commands.length === 0 ? 'help' : undefined)
    if (dirOption !== undefined) {
      if (!FILE.test(dirOption)) throw new Error(`help_dir: invalid characters in ${JSON.stringify(dirOption)}`)
      const dir = paths.resolve(dirOption)
      if (existsSync(dir)) {
        for (const name of readdirSync(dir).slice(0, MAX_FILES)) {
          if (!COMMAND.test(name)) continue
          const lines = read(join(dir, name))
          if (lines !== undefined) texts.set(name.toLowerCase(), lines)
        }
      } else if (options.help_dir !== undefined) log.warn(`help_dir ${dir} does not exist`)
    }
    for (const pair of options.commands) {
      const eq = pair.indexOf('=')
      const cmd = pair.slice(0, eq)
      const file = pair.slice(eq + 1)
      if (eq <= 0 || !COMMAND.test(cmd)) throw new Error(`invalid command name ${JSON.stringify(cmd)}`)
      if (!FILE.test(file)) throw new Error(`invalid characters in help file name for ${cmd}: ${JSON.stringify(file)}`)
      const path = paths.resolve(file.includes('/') ? file : join('help', file))
      const lines = read(path)
      // qpsmtpd warns and goes on when a command's file is missing; so do we.
      if (lines === undefined) log.warn(`no help file for command ${cmd} (${path})`)
      else texts.set(cmd.toLowerCase(), lines)
    }

    const help: HookMap['help'] = (ctx, args) => {
      if (options.not_implemented) return reject({ code: 502, enhanced: '5.5.1', text: 'Not implemented' })
      const word = args.split(/\s+/)[0] ?? ''
      if (word === '') return pass()
      if (!COMMAND.test(word)) return reject({ code: 501, enhanced: '5.5.4', text: 'Invalid command name' })
      const cmd = word.toLowerCase()
      const lines = texts.get(cmd)
      ctx.result('info', `help ${cmd}`)
      if (lines === undefined || lines.length === 0)
        return accept({ code: 214, enhanced: '2.0.0', text: `No help available for SMTP command: ${cmd}` })
      return accept({ code: 214, enhanced: '2.0.0', text: lines })
    }
    return { hooks: { help } }
  },
})
