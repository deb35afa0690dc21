/**
 * The runner's bookkeeping per plugin and hook: every call's latency and how it ended, into
 * metrics children bound when the runner is made, so the hot path adds one clock read and two
 * increments.
 */
import type { Counter, Histogram, Labelled, Metrics } from '../metrics/index.ts'
import type { HookName } from './hook-map.ts'
import type { RegisteredPlugin } from './runner.ts'
import type { Verdict } from './verdict.ts'

/** How a hook call ended, as counted: the verdict's kind, `ok` for observers, or the failure. */
type Outcome = Verdict['kind'] | 'rewrite' | 'authenticated' | 'credentials' | 'ok' | 'error' | 'timeout'
type OutcomeLabels = 'plugin' | 'hook' | 'verdict'

/** One plugin on one hook, with its metrics children bound once. */
export class HookSlot {
  readonly plugin: RegisteredPlugin
  readonly #hook: HookName
  readonly #duration: Histogram
  readonly #outcomes: Labelled<OutcomeLabels, Counter>
  // Bound at an outcome's first occurrence: a series per outcome that never happens is noise.
  readonly #counters: { [O in Outcome]?: Counter } = {}

  constructor(plugin: RegisteredPlugin, hook: HookName, metrics: HookMetrics) {
    this.plugin = plugin
    this.#hook = hook
    this.#duration = metrics.duration.labels({ plugin: plugin.name, hook })
    this.#outcomes = metrics.outcomes
  }

  /** @param started performance.now() when the call began */
  record(started: number, outcome: Outcome): void {
    this.#duration.observe((performance.now() - started) / 1000)
    let counter = this.#counters[outcome]
    if (counter === undefined)
      this.#counters[outcome] = counter = this.#outcomes.labels({
        plugin: this.plugin.name,
        hook: this.#hook,
        verdict: outcome,
      })
    counter.inc()
  }
}

export interface HookMetrics {
  readonly duration: Labelled<'plugin' | 'hook', Histogram>
  readonly outcomes: Labelled<OutcomeLabels, Counter>
}

/** The runner's metrics, declared in `metrics` (the same ones again after a reload). */
export function hookMetrics(metrics: Metrics): HookMetrics {
  return {
    duration: metrics.histogram({
      name: 'qtsmtpd_hook_duration_seconds',
      help: 'Time plugins took to answer a hook call',
      labelNames: ['plugin', 'hook'],
    }),
    outcomes: metrics.counter({
      name: 'qtsmtpd_hook_verdicts_total',
      help: 'Hook calls by how they ended: the verdict, ok (observer hooks), error or timeout',
      labelNames: ['plugin', 'hook', 'verdict'],
    }),
  }
}
