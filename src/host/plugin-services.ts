/**
 * The services the host hands to plugins at setup (`api.dns`, `api.store`, `api.metrics`,
 * `api.clock`, `api.net`): the one way a plugin reaches time, the network, DNS and shared
 * state, so that tests can hand it fakes and an operator finds every outside call in one place.
 *
 * `dns` and `store` may be absent (a test server given no DNS, a runtime built in code without
 * a store); a plugin that cannot work without one says so in `requires`, and the loader refuses
 * to start without it. The others always exist.
 */
import { type Clock, systemClock } from '../clock/index.ts'
import type { DnsResolver } from '../dns/index.ts'
import { type Metrics, memoryMetrics } from '../metrics/index.ts'
import { type Net, systemNet } from '../net/index.ts'
import type { Store } from '../store/index.ts'

export interface ServiceTypes {
  readonly dns: DnsResolver
  readonly store: Store
  readonly metrics: Metrics
  readonly clock: Clock
  readonly net: Net
}

export type ServiceName = keyof ServiceTypes

export const serviceNames: readonly ServiceName[] = ['dns', 'store', 'metrics', 'clock', 'net']

/** The services a server may lack. */
export type OptionalService = 'dns' | 'store'

/** What a runtime was given: the process's services, or a test's fakes. */
export type ServiceSet = { readonly [K in ServiceName]?: ServiceTypes[K] | undefined }

/** What a runtime holds: every service, the optional ones perhaps undefined. */
export type ProvidedServices = Omit<ServiceTypes, OptionalService> & {
  readonly [K in OptionalService]: ServiceTypes[K] | undefined
}

/** The services every server has get the system implementations where none was given. */
export function withDefaults(given: ServiceSet = {}): ProvidedServices {
  return {
    dns: given.dns,
    store: given.store,
    metrics: given.metrics ?? memoryMetrics(),
    clock: given.clock ?? systemClock,
    net: given.net ?? systemNet,
  }
}

export const isServiceName = (name: unknown): name is ServiceName =>
  typeof name === 'string' && (serviceNames as readonly string[]).includes(name)
