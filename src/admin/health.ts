/**
 * The server's health for load balancers: `/healthz` (200 `ready`; 503 `starting`, `draining`,
 * `overloaded`) and HAProxy's agent-check line. Overloaded: the open connections of all
 * workers reach admin_overload percent of their --max-connections. The agent's weight follows
 * the free capacity, so HAProxy sends fewer new clients to a busier server.
 */
import type { AdminBackend, ServerFacts } from './backend.ts'
import type { ProcessReport } from './report.ts'
import type { AdminSettings } from './settings.ts'

export type HealthState = 'ready' | 'starting' | 'draining' | 'overloaded'

export interface Health {
  readonly state: HealthState
  /** Open sessions, all workers. */
  readonly open: number
  /** The sum of --max-connections of the serving processes (0: unlimited). */
  readonly capacity: number
  /** 1 to 100: the free share of the capacity (100 when unlimited). */
  readonly weight: number
}

export async function healthOf(backend: AdminBackend): Promise<Health> {
  const facts = backend.facts()
  if (facts.draining || !facts.workers.some((w) => w.ready)) return healthFrom(facts, [], backend.settings)
  const { reports } = await backend.collect({ status: { order: 'oldest', offset: 0, limit: 0 } })
  return healthFrom(facts, reports, backend.settings)
}

/** Health from reports already collected (the status page asks once for both). */
export function healthFrom(facts: ServerFacts, reports: readonly ProcessReport[], settings: AdminSettings): Health {
  if (facts.draining) return { state: 'draining', open: 0, capacity: 0, weight: 0 }
  let open = 0
  let capacity = 0
  let unlimited = false
  let serving = 0
  for (const r of reports) {
    if (r.status === undefined) continue
    serving++
    open += r.status.sessions
    capacity += r.status.maxConnections
    if (r.status.maxConnections === 0) unlimited = true
  }
  if (serving === 0 || !facts.workers.some((w) => w.ready)) return { state: 'starting', open, capacity, weight: 0 }
  if (unlimited) return { state: 'ready', open, capacity: 0, weight: 100 }
  const weight = Math.max(1, Math.min(100, Math.round(100 * (1 - open / capacity))))
  const overloaded = open * 100 >= capacity * settings.overloadPercent
  return { state: overloaded ? 'overloaded' : 'ready', open, capacity, weight }
}

/**
 * HAProxy's agent-check answer (one line): `ready up N%` when serving (`ready` cancels a DRAIN
 * or MAINT the agent set earlier, never one an operator set); `drain` when overloaded (no new
 * clients, open ones go on; the next `ready` undoes it); `maint` while draining for a stop
 * (HAProxy stops checking and sends nothing new; the restarted server's `ready up` brings it
 * back); `down` while starting.
 */
export function agentAnswer(h: Health): string {
  switch (h.state) {
    case 'ready':
      return `ready up ${h.weight}%`
    case 'overloaded':
      return 'drain'
    case 'draining':
      return 'maint'
    case 'starting':
      return 'down #starting'
  }
}
