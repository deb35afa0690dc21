/**
 * Typed per-connection and per-transaction state (qpsmtpd's notes, Haraka's notes),
 * without a stringly bag: the owning plugin exports a key, readers import it.
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

export function defineKey<T>(name: string, opts: { scope: KeyScope; initial: T | (() => T) }): Key<T> {
  const init = opts.initial
  const initial = typeof init === 'function' ? (init as () => T) : () => init
  return Object.freeze({ name, scope: opts.scope, initial })
}

/** One scope's values. Reading a key never set gives its initial value (created once). */
export class Notes {
  readonly #values = new Map<Key<unknown>, unknown>()

  get<T>(key: Key<T>): T {
    if (this.#values.has(key)) return this.#values.get(key) as T
    const value = key.initial()
    this.#values.set(key, value)
    return value
  }

  set<T>(key: Key<T>, value: T): void {
    this.#values.set(key, value)
  }

  has(key: Key<unknown>): boolean {
    return this.#values.has(key)
  }

  delete(key: Key<unknown>): void {
    this.#values.delete(key)
  }

  /** For logs and the status page: name → value of every key set. */
  snapshot(): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    for (const [k, v] of this.#values) out[k.name] = v
    return out
  }
}
