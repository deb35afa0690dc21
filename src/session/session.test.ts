/**
 * Session on an in-memory duplex whose writes complete only when the test says so: what
 * happens while replies wait for the client to read them.
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
