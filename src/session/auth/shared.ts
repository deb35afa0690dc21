/**
 * What the AUTH exchanges of every session share: the key that made-up SCRAM salts are derived
 * from, kept in the store so that an unknown user gets the same salt from every worker process
 * and node (a salt that changed between connections would tell that the user does not exist),
 * and the iteration count of made-up and derived SCRAM keys.
 */
import { randomBytes } from 'node:crypto'
import type { Logger } from '../../host/logger.ts'
import type { Store } from '../../store/index.ts'

export interface AuthShared {
  readonly saltKey: Buffer
  /** The iteration count of the last stored SCRAM keys a backend gave (4096 until then). */
  iterations: number
}

export const defaultScramIterations = 4096

/** A process-local key: a server without a store (one process, or tests). */
export const localAuthShared = (): AuthShared => ({ saltKey: randomBytes(32), iterations: defaultScramIterations })

export async function openAuthShared(store: Store | undefined, log: Logger): Promise<AuthShared> {
  if (store === undefined) return localAuthShared()
  const scoped = store.scope('auth')
  try {
    await scoped.compareAndSet('scram-salt-key', undefined, randomBytes(32).toString('hex'))
    const hex = (await scoped.get('scram-salt-key')) ?? ''
    if (/^[0-9a-f]{64}$/.test(hex)) return { saltKey: Buffer.from(hex, 'hex'), iterations: defaultScramIterations }
    log.warn('the store holds no usable auth:scram-salt-key; SCRAM salts of unknown users are this process’s own')
  } catch (e) {
    log.warn(
      `store unavailable for auth:scram-salt-key (${(e as Error).message}); SCRAM salts of unknown users are this process’s own`,
    )
  }
  return localAuthShared()
}
