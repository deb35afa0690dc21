/**
 * Connection facts the server (not a plugin) knows, as typed connection-scoped keys.
 *
 * @example
 *   import { ConnectionsFromIp } from '../../server/connection-keys.ts'
 *   if (ctx.get(ConnectionsFromIp) > max) return defer('too many connections')
 */
import { defineKey } from '../host/keys.ts'

/** Open connections from this client's address, this one included, when the session starts. */
export const ConnectionsFromIp = defineKey<number>('server/connections-from-ip', { scope: 'connection', initial: 1 })
