/**
 * Session on in-memory duplexes whose writes complete only when the test says so, or never:
 * what happens while replies wait for the client to read them.
 */
import assert from 'node:assert/strict'
import { Duplex } from 'node:stream'
import { test } from 'node:test'
import { createLogger } from '../host/logger.ts'
import { HookRunner } from '../host/runner.ts'
import { sessionSettings } from '../server/core-settings.ts'
import { Session } from './session.ts'

/** A duplex that records what the session writes and holds each write until release(). */
class SlowPeer extends Duplex {
  written = ''
  #held: (() => void)[] = []
  constructor() {
    super({ writableHighWaterMark: 1, allowHalfOpen: true })
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.written += chunk.toString('latin1')
    this.#held.push(() => cb())
  }
  release(): void {
    const held = this.#held
    this.#held = []
    for (const cb of held) cb()
  }
  send(text: string): void {
    this.push(Buffer.from(text, 'latin1'))
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

test('bytes that arrive while replies wait for the client to read are still processed', async () => {
  const peer = new SlowPeer()
  const session = new Session(peer, {
    settings: sessionSettings({ me: 'mx.test', timeouts: { commandMs: 5000 } }),
    runner: new HookRunner([]),
    server: { me: 'mx.test', version: 'test' },
    log: createLogger(() => {}, 0),
    listener: { name: 'test', role: 'smtp' },
    remote: { ip: '192.0.2.1', port: 1234 },
    local: { ip: '192.0.2.2', port: 25 },
    tls: undefined,
    tlsContexts: undefined,
    id: 'test',
  })
  const done = session.run()
  await until('the greeting', () => peer.written.startsWith('220 '))
  peer.release()
  await sleep(20)
  peer.send('NOOP\r\n')
  await until('the NOOP reply', () => peer.written.includes('250 '))
  // The reply is still being written when the next command arrives.
  peer.send('QUIT\r\n')
  await sleep(20)
  peer.release()
  await until('the QUIT reply', () => peer.written.includes('221 '), 2000)
  peer.release()
  await done
})

/** A peer that sends NOOPs as fast as they are read (up to `limit` bytes) and never reads a reply. */
class FloodPeer extends Duplex {
  pulled = 0
  written = 0
  readonly #chunk = Buffer.from('NOOP\r\n'.repeat(10_000))
  readonly #limit: number
  constructor(limit: number) {
    super({ allowHalfOpen: true })
    this.#limit = limit
  }
  override _read(): void {
    if (this.pulled >= this.#limit) return void this.push(null)
    this.pulled += this.#chunk.length
    this.push(this.#chunk)
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, _cb: (e?: Error | null) => void): void {
    // Never completes: the client's window is shut.
    this.written += chunk.length
  }
}

test('a client that never reads: the session stops reading, holds a bounded amount and closes', async () => {
  const peer = new FloodPeer(16 * 1024 * 1024)
  const logged: string[] = []
  const session = new Session(peer, {
    settings: sessionSettings({
      me: 'mx.test',
      timeouts: { commandMs: 200 },
      limits: { junkCommands: 1_000_000_000, commandsPerSession: 1_000_000_000 },
      policies: { enforceSync: false },
    }),
    runner: new HookRunner([]),
    server: { me: 'mx.test', version: 'test' },
    log: createLogger((e) => logged.push(e.message), 5),
    listener: { name: 'test', role: 'smtp' },
    remote: { ip: '192.0.2.1', port: 1234 },
    local: { ip: '192.0.2.2', port: 25 },
    tls: undefined,
    tlsContexts: undefined,
    id: 'test',
  })
  await session.run()
  assert.ok(peer.destroyed, 'the session closed the connection')
  assert.ok(
    logged.some((m) => m.includes('client does not read replies')),
    logged.join('\n'),
  )
  // What the session took in and what waits to be written stay within a few socket reads
  // (one 60 kB chunk of NOOPs answers with ~150 kB), however much the client offers.
  assert.ok(peer.pulled <= 256 * 1024, `read ${peer.pulled} bytes from a client that never reads`)
  const pendingOut = peer.written + peer.writableLength
  assert.ok(pendingOut <= 512 * 1024, `${pendingOut} bytes of replies held for a client that never reads`)
})
