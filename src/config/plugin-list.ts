/**
 * Parses `config/plugins`: one `name arg arg …` per line, load order = hook order (qpsmtpd
 * `load_plugins`). `name:N` loads another instance of the same plugin (instance = 'N').
 * Extension over qpsmtpd: an argument that STARTS with `"` is a quoted string that may hold
 * spaces (`\"` and `\\` escape inside); a `"` inside a bare word stays literal, as in qpsmtpd.
 * Extension over qpsmtpd: a leading listener selector, `[smtp] dnsbl ...` (listener-selector.ts).
 * Whether a name is a known plugin is the loader's job; this only refuses names that can name nothing.
 */
import type { ConfigLine } from './config-dir.ts'
import { ConfigError, ConfigErrorCode } from './config-error.ts'
import { type ListenerSelector, splitListenerSelector } from './listener-selector.ts'

export interface PluginLine {
  readonly name: string
  readonly instance: string | undefined
  readonly args: string[]
  readonly file: string
  readonly line: number
  /** The listeners the plugin runs on; every listener when absent. */
  readonly listeners?: ListenerSelector
}

// Control characters (tab is a separator), format characters such as bidi overrides, and the
// U+FFFD that invalid UTF-8 decodes to. Printable non-ASCII in arguments is allowed (paths, greetings).
const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\uFFFD]/u
// Plugin names are paths under plugins/ (`virus/clamdscan`, `queue/smtp-forward`) or Perl-style `A::B`.
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:(?:\/|::)[A-Za-z0-9_][A-Za-z0-9_.-]*)*$/
const INSTANCE = /^(.*[^:]):(\d+)$/

/**
 * @example
 * parsePluginList(config.lines('plugins') ?? [])
 * // 'check_badmailfrom:1 reject "bad sender"' → { name: 'check_badmailfrom', instance: '1', args: ['reject', 'bad sender'], … }
 */
export function parsePluginList(lines: readonly ConfigLine[]): PluginLine[] {
  return lines.map(parsePluginLine)
}

export function parsePluginLine(cl: ConfigLine): PluginLine {
  const fail = (code: ConfigErrorCode, text: string) => new ConfigError(code, cl.file, cl.line, text)
  for (const ch of cl.text) {
    if (ch !== '\t' && NON_PRINTABLE.test(ch)) {
      const hex = ch.codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0')
      throw fail(ConfigErrorCode.Syntax, `non-printable character U+${hex} in plugin line`)
    }
  }
  const { selector, rest } = splitListenerSelector(cl)
  const words = splitWords(rest)
  if (typeof words === 'string') throw fail(ConfigErrorCode.PluginOption, words)
  const [first, ...args] = words
  if (first === undefined || first.quoted) throw fail(ConfigErrorCode.PluginUnknown, 'plugin name expected')
  let name = first.text
  let instance: string | undefined
  const m = INSTANCE.exec(name)
  if (m?.[1] !== undefined && m[2] !== undefined) {
    name = m[1]
    instance = m[2]
  }
  if (!NAME.test(name) || name.split('/').includes('..')) {
    throw fail(ConfigErrorCode.PluginUnknown, `bad plugin name ${JSON.stringify(first.text)}`)
  }
  const line = { name, instance, args: args.map((a) => a.text), file: cl.file, line: cl.line }
  return selector === undefined ? line : { ...line, listeners: selector }
}

interface Word {
  readonly text: string
  readonly quoted: boolean
}

/** Splits on spaces and tabs; returns an error text for bad quoting. Linear, no regex backtracking. */
function splitWords(s: string): Word[] | string {
  const out: Word[] = []
  let i = 0
  const isSpace = (c: string | undefined) => c === ' ' || c === '\t'
  while (i < s.length) {
    if (isSpace(s[i])) {
      i++
      continue
    }
    if (s[i] !== '"') {
      const start = i
      while (i < s.length && !isSpace(s[i])) i++
      out.push({ text: s.slice(start, i), quoted: false })
      continue
    }
    let text = ''
    i++
    for (;;) {
      const c = s[i]
      if (c === undefined) return 'unterminated quoted argument'
      if (c === '"') break
      if (c === '\\' && (s[i + 1] === '"' || s[i + 1] === '\\')) {
        text += s[i + 1]
        i += 2
        continue
      }
      text += c
      i++
    }
    i++
    if (i < s.length && !isSpace(s[i])) return 'quoted argument must be followed by a space'
    out.push({ text, quoted: true })
  }
  return out
}
