/**
 * Per-plugin results (qpsmtpd's "pass/fail/skip/error" log convention, Haraka's results):
 * a blackboard other plugins (karma) can read, summarised in one log line per connection.
 */

export type ResultKind = 'pass' | 'fail' | 'skip' | 'error' | 'info'

export interface PluginResult {
  readonly plugin: string
  readonly kind: ResultKind
  readonly message: string
}

export class Results {
  readonly #items: PluginResult[] = []

  add(plugin: string, kind: ResultKind, message = ''): void {
    // Bounded so that a looping plugin cannot grow a long session without limit.
    if (this.#items.length < 1000) this.#items.push({ plugin, kind, message })
  }

  all(): readonly PluginResult[] {
    return this.#items
  }

  of(plugin: string): PluginResult[] {
    return this.#items.filter((r) => r.plugin === plugin)
  }

  has(plugin: string, kind: ResultKind): boolean {
    return this.#items.some((r) => r.plugin === plugin && r.kind === kind)
  }

  /** `plugin:kind` list for the summary line, e.g. `rcpt_ok:pass dnsbl:fail(zen)`. */
  summary(): string {
    return this.#items.map((r) => `${r.plugin}:${r.kind}${r.message ? `(${r.message})` : ''}`).join(' ')
  }
}
