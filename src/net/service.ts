/**
 * The net service plugins get as `api.net`: connections with deadlines, line-protocol
 * clients, pools and child processes, in one object a test can replace (to point a plugin at a
 * fake peer) and an operator can read as the list of ways a plugin reaches outside.
 */
import type { Socket } from 'node:net'
import { type ChildOutcome, type RunOptions, runChild } from './child-process.ts'
import { type ConnectOptions, type ConnectTarget, connect } from './connect.ts'
import { LineConnection, type LineConnectionOptions } from './line-connection.ts'
import { createPool, type Pool, type PoolOptions } from './pool.ts'

export type ChildResult = ChildOutcome & { readonly feedError: Error | undefined }

export interface Net {
  /** A socket, connected (and TLS-handshaken) within `timeoutMs`. */
  connect(target: ConnectTarget, opts: ConnectOptions): Promise<Socket>
  /**
   * A line-protocol connection.
   * @example
   *   const c = await net.connectLines({ path: '/run/clamav/clamd.ctl' }, { timeoutMs: 2_000, signal: ctx.signal })
   *   const answer = await c.request('PING', { timeoutMs: 1_000, signal: ctx.signal }) // 'PONG'
   */
  connectLines(target: ConnectTarget, opts: ConnectOptions & LineConnectionOptions): Promise<LineConnection>
  /** A pool of connections to one service; the plugin closes it in its `close()`. */
  pool<T>(opts: PoolOptions<T>): Pool<T>
  /**
   * Runs a program from an argument vector (never a shell) with a time limit; the outcome is a
   * value, never an exception.
   * @example
   *   const r = await net.run({ argv: ['/usr/bin/spamc', '-c'], stdio: 'pipe', timeoutMs: 10_000, signal: ctx.signal })
   */
  run(opts: RunOptions): Promise<ChildResult>
}

export const systemNet: Net = {
  connect,
  async connectLines(target, opts) {
    return new LineConnection(await connect(target, opts), opts)
  },
  pool: createPool,
  run: runChild,
}
