/**
 * Listener selectors: a `config/plugins` line that starts with `[smtp]` loads its plugin for
 * the listeners with that role or name only, `[!submission,smtps]` for all but those (Postfix's
 * per-service `-o` overrides in master.cf, on one line). qpsmtpd has no such thing, so a
 * qpsmtpd plugins file, whose lines never start with `[`, means what it always meant.
 * Words are roles (`smtp`, `submission`, `smtps`) or listener names (`smtp:25`, the
 * `role:port` that `--listen` gives); which names exist is known only where the listeners
 * are (host/listener-chains.ts checks them).
 */
import { ConfigError, ConfigErrorCode } from './config-error.ts'

/** What a listener is for: port 25, authenticated submission (587), or submission over implicit TLS (465). */
export type ListenerRole = 'smtp' | 'submission' | 'smtps'

export interface ListenerInfo {
  /** `role:port` (`smtp:25`), or the name systemd gave its socket. */
  readonly name: string
  readonly role: ListenerRole
}

export const listenerRoles: readonly ListenerRole[] = ['smtp', 'submission', 'smtps']

export interface ListenerSelector {
  /** `[!…]`: every listener except those named. */
  readonly except: boolean
  /** Roles and listener names, as written. */
  readonly words: readonly string[]
  /** The selector as written, for messages: `[!submission,smtps]`. */
  readonly text: string
  /** Where it was written. */
  readonly file: string
  readonly line: number
}

const WORD = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/

/**
 * Splits a leading selector off a plugin line: the selector (if any) and the rest of the line.
 *
 * @example
 * splitListenerSelector({ text: '[!submission] dnsbl zen.example', file: 'config/plugins', line: 3 })
 * // → { selector: { except: true, words: ['submission'], text: '[!submission]', … }, rest: 'dnsbl zen.example' }
 */
export function splitListenerSelector(cl: { readonly text: string; readonly file: string; readonly line: number }): {
  readonly selector: ListenerSelector | undefined
  readonly rest: string
} {
  const text = cl.text.trimStart()
  if (!text.startsWith('[')) return { selector: undefined, rest: cl.text }
  const fail = (why: string) =>
    new ConfigError(
      ConfigErrorCode.Syntax,
      cl.file,
      cl.line,
      `${why}; a listener selector is a list of roles (${listenerRoles.join(', ')}) or listener names, ` +
        'e.g. [smtp] or [!submission,smtps], before the plugin name',
    )
  const end = text.indexOf(']')
  if (end < 0) throw fail('listener selector without its closing ]')
  const rest = text.slice(end + 1)
  if (!/^[ \t]+\S/.test(rest)) throw fail(`plugin name expected after the listener selector ${text.slice(0, end + 1)}`)
  let inside = text.slice(1, end).trim()
  const except = inside.startsWith('!')
  if (except) inside = inside.slice(1).trim()
  const words = inside === '' ? [] : inside.split(',').map((w) => w.trim())
  if (words.length === 0) throw fail(`empty listener selector ${text.slice(0, end + 1)}`)
  const bad = words.find((w) => !WORD.test(w))
  if (bad !== undefined) throw fail(`${JSON.stringify(bad)} in ${text.slice(0, end + 1)} is no role or listener name`)
  return {
    selector: { except, words, text: `[${except ? '!' : ''}${words.join(',')}]`, file: cl.file, line: cl.line },
    rest: rest.trimStart(),
  }
}

/** Whether a plugin with this selector runs on the listener. */
export function selects(selector: ListenerSelector, listener: ListenerInfo): boolean {
  const named = selector.words.includes(listener.role) || selector.words.includes(listener.name)
  return named !== selector.except
}

/** The words of a selector that are neither a role nor the name of one of `listeners`. */
export function unknownListenerWords(selector: ListenerSelector, listeners: readonly ListenerInfo[]): string[] {
  return selector.words.filter(
    (w) => !(listenerRoles as readonly string[]).includes(w) && !listeners.some((l) => l.name === w),
  )
}
