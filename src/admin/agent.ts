/**
 * HAProxy's agent-check (`--agent-check HOST:PORT`): HAProxy connects, we write one line
 * (`ready up 73%`, `drain`, `maint`, `down #starting`: health.ts) and close. What HAProxy sends
 * first (`agent-send`) is read and ignored. The answer tells only the server's state and load,
 * so it needs no token; at most 64 connections are held, each for at most 5 s.
 */

import type { AddressInfo } from 'node:net'
import { createServer, type Server } from 'node:net'
import type { AdminBackend } from './backend.ts'
import { agentAnswer, healthOf } from './health.ts'

export class AgentCheck {
  readonly #server: Server

  constructor(backend: AdminBackend) {
    this.#server = createServer((socket) => {
      socket.setTimeout(5000, () => socket.destroy())
      socket.on('error', () => {})
      socket.on('data', () => {})
      void healthOf(backend)
        .then(agentAnswer, () => 'down #no answer')
        .then((line) => socket.end(`${line}\n`))
    })
    this.#server.maxConnections = 64
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', reject)
        resolve(this.#server.address() as AddressInfo)
      })
    })
  }

  close(): void {
    this.#server.close()
  }
}
