/**
 * Per-plugin results (qpsmtpd's "pass/fail/skip/error" log convention, Haraka's results):
 * a blackboard other plugins (karma) can read. A transaction's results are printed in its message
 * line and, with the connection's own, in the connection's summary line (docs/running.md).
 */

export type ResultKind = 'pass' | 'fail' | 'skip' | 'error' | 'info'

export interface PluginResult {
  readonly plugin: string
  readonly kind: ResultKind
  readonly message: string
}

export class Results {
  readonly #items: PluginResult[] = []
  /** What summary() prints: the results added here, and those of a connection's transactions. */
  readonly #summary: PluginResult[] = []

  add(plugin: string, kind: ResultKind, message = ''): void {
    const r: PluginResult = { plugin, kind, message }
    // Bounded so that a looping plugin cannot grow a long session without limit.
    if (this.#items.length < LIMIT) this.#items.push(r)
    if (this.#summary.length < LIMIT) this.#summary.push(r)
  }

  /** For the summary line only (a transaction's result, kept after the transaction ends). */
  addToSummary(plugin: string, kind: ResultKind, message = ''): void {
    if (this.#summary.length < LIMIT) this.#summary.push({ plugin, kind, message })
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

  /** `plugin:kind` list for the log lines, in the order added, e.g. `rcpt_ok:pass dnsbl:fail(zen)`. */
  summary(): string {
    return this.#summary.map((r) => `${r.plugin}:${r.kind}${r.message ? `(${r.message})` : ''}`).join(' ')
  }
}

const LIMIT = 1000
