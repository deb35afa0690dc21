/**
 * The services the host hands to plugins at setup (`api.metrics`, `api.clock`, ...): the one way
 * a plugin reaches time, the network, shared state and the metrics registry, so that tests can
 * hand it fakes and an operator finds every outside call in one place.
 */
import { type Clock, systemClock } from '../clock/index.ts'
import { type Metrics, memoryMetrics } from '../metrics/index.ts'

export interface ServiceTypes {
  readonly metrics: Metrics
  readonly clock: Clock
}

export type ServiceName = keyof ServiceTypes

/** What a runtime was given; the ones every server has get their defaults in `withDefaults`. */
export type ServiceSet = { readonly [K in ServiceName]?: ServiceTypes[K] | undefined }

/** The services every server has, with the system implementations where none was given. */
export function withDefaults(given: ServiceSet = {}): ServiceTypes {
  return {
    ...given,
    metrics: given.metrics ?? memoryMetrics(),
    clock: given.clock ?? systemClock,
  }
}
