/** The net layer: IP addresses, connections with deadlines, line clients, pools, child processes. */
export { type ChildOutcome, findProgram, type PathResolver, type RunOptions, runChild } from './child-process.ts'
export { type ConnectOptions, type ConnectTarget, connect, describeTarget, NetError, parseTarget } from './connect.ts'
export {
  formatIp,
  type IpAddress,
  normalizeIp,
  parseIp,
  reversedLabels,
  reverseName,
} from './ip.ts'
export { LineConnection, type LineConnectionOptions, type ReadOptions } from './line-connection.ts'
export { createPool, type Pool, type PoolOptions, type PoolStats, type UseOptions } from './pool.ts'
export { type ChildResult, type Net, systemNet } from './service.ts'
