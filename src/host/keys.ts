/**
 * Typed per-connection and per-transaction state (qpsmtpd's notes, Haraka's notes),
 * without a stringly bag: the owning plugin exports a key, readers import it.
 *
 * A key is its name, not its object: a plugin that bundles its own copy of qtsmtpd (vendored,
 * or another version in its node_modules) defines `Naughty` a second time, and both copies must
 * read and write the one value, or a check recorded through one would go unseen (mail let
 * through). One name with two scopes is refused where the second is defined.
 *
 * @example
 *   export const Spf = defineKey<SpfResult | undefined>('mail/spf', { scope: 'transaction', initial: undefined })
 *   ctx.set(Spf, result); const spf = ctx.get(Spf)
 */

export type KeyScope = 'connection' | 'transaction'

export interface Key<T> {
  readonly name: string
  readonly scope: KeyScope
  readonly initial: () => T
}

// Shared by every copy of this module in the process (a registered symbol on globalThis), so a
// second copy's definition is checked against the first. It holds names and scopes, no state.
const scopesSlot = Symbol.for('qtsmtpd.key-scopes')
const definedScopes = ((globalThis as Record<symbol, unknown>)[scopesSlot] ??= new Map()) as Map<string, KeyScope>

export function defineKey<T>(name: string, opts: { scope: KeyScope; initial: T | (() => T) }): Key<T> {
  if (typeof name !== 'string' || name === '') throw new Error('defineKey: the name must be a non-empty string')
  if (opts.scope !== 'connection' && opts.scope !== 'transaction')
    throw new Error(`defineKey ${name}: scope must be 'connection' or 'transaction', not ${String(opts.scope)}`)
  const defined = definedScopes.get(name)
  if (defined !== undefined && defined !== opts.scope)
    throw new Error(
      `key "${name}" is defined with scope ${opts.scope}, but it already is with scope ${defined}: ` +
        'a key is its name, so two plugins that share a key must agree on its scope',
    )
  definedScopes.set(name, opts.scope)
  const init = opts.initial
  const initial = typeof init === 'function' ? (init as () => T) : () => init
  return Object.freeze({ name, scope: opts.scope, initial })
}

/** One scope's values, by key name. Reading a key never set gives its initial value (created once). */
export class Notes {
  readonly #values = new Map<string, unknown>()

  get<T>(key: Key<T>): T {
    if (this.#values.has(key.name)) return this.#values.get(key.name) as T
    const value = key.initial()
    this.#values.set(key.name, value)
    return value
  }

  set<T>(key: Key<T>, value: T): void {
    this.#values.set(key.name, value)
  }

  has(key: Key<unknown>): boolean {
    return this.#values.has(key.name)
  }

  delete(key: Key<unknown>): void {
    this.#values.delete(key.name)
  }

  /** For logs and the status page: name → value of every key set. */
  snapshot(): Record<string, unknown> {
    return Object.fromEntries(this.#values)
  }
}
