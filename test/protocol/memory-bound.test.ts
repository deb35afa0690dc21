/**
 * Memory per session (docs/security.md §1.4, issue 18 F1): what a message costs the server is
 * bounded by the header limit plus the spool's memory threshold, however the client chunks it.
 * Before the fix one session pinned about 6 MB for 249 KiB of dot-stuffed lines (one Buffer per
 * line), and as much for 99,000 one-octet BDAT chunks; a few hundred sessions exhausted the heap.
 * The measurement is taken in a queue hook that holds every session's finished message until all
 * of them are there, so it does not depend on timing.
 */
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { defer } from '../../src/host/verdict.ts'
import { retainedBytes } from '../../src/message/test-fixtures.ts'
import { defaultLimits } from '../../src/session/settings.ts'
import { acceptAllRecipients, startTestServer, type TestServer } from '../../src/testing/index.ts'

const SESSIONS = 4
const THRESHOLD = 256 * 1024
/** Beside the limits, a session holds one socket read (64 KiB) and one spool block (16 KiB). */
const BUFFERS = 128 * 1024

/** A queue that holds each message until SESSIONS of them are in it, calls `measure`, then defers all. */
function holdingQueue(measure: () => void) {
  let held: (() => void)[] = []
  return definePlugin({
    name: 'test/holding-queue',
    options: {},
    timeoutMs: 100_000,
    setup: () => ({
      hooks: {
        queue: async () => {
          await new Promise<void>((release) => {
            held.push(release)
            if (held.length < SESSIONS) return
            measure()
            for (const r of held) r()
            held = []
          })
          return defer('held for a measurement')
        },
      },
    }),
  })()
}

/** A raw client that counts reply lines with a given prefix, without keeping what it reads. */
class Client {
  readonly socket: Socket
  #tail = ''
  #counts = new Map<string, number>()
  #waiters: (() => void)[] = []

  constructor(socket: Socket) {
    this.socket = socket
    socket.setEncoding('latin1')
    socket.on('error', () => {})
    socket.on('data', (d: string) => {
      const lines = (this.#tail + d).split('\r\n')
      this.#tail = lines.pop() ?? ''
      for (const l of lines) {
        const code = l.slice(0, 4) // '250 ', '250-', '354 ', ...
        this.#counts.set(code, (this.#counts.get(code) ?? 0) + 1)
      }
      for (const w of this.#waiters.splice(0)) w()
    })
  }

  static async open(port: number): Promise<Client> {
    const s = connect({ port, host: '127.0.0.1' })
    await new Promise((r) => s.once('connect', r))
    return new Client(s)
  }

  async until(code: string, n: number): Promise<void> {
    while ((this.#counts.get(code) ?? 0) < n) await new Promise<void>((r) => this.#waiters.push(r))
  }

  /** Greeting, EHLO, MAIL and RCPT accepted: the next bytes are the content command. */
  async envelope(): Promise<void> {
    await this.until('220 ', 1)
    this.socket.write('EHLO client.test\r\n')
    await this.until('250 ', 1)
    this.socket.write('MAIL FROM:<a@remote.test>\r\nRCPT TO:<u@local.test>\r\n')
    await this.until('250 ', 3)
  }
}

const BDAT_CHUNKS = 40_000

const shapes = [
  {
    name: 'DATA with one dot-stuffed line after another ("..\\r\\n" × 85,000, 249 KiB unstuffed)',
    payload: Buffer.from(`\r\n${'..\r\n'.repeat(85_000)}`),
    async send(c: Client, payload: Buffer) {
      c.socket.write('DATA\r\n')
      await c.until('354 ', 1)
      c.socket.write(payload)
      c.socket.write('.\r\n')
    },
  },
  {
    // Lines of one "x" each, sent as "x", CR, LF in chunks of their own.
    name: `BDAT in one-octet chunks (${BDAT_CHUNKS.toLocaleString('en')} × "BDAT 1")`,
    payload: Buffer.from(
      `BDAT 2\r\n\r\n${Array.from({ length: BDAT_CHUNKS }, (_, i) => `BDAT 1\r\n${'x\r\n'[i % 3]}`).join('')}`,
    ),
    async send(c: Client, payload: Buffer) {
      c.socket.write(payload)
      await c.until('250 ', 3 + 1 + BDAT_CHUNKS)
      c.socket.write('BDAT 0 LAST\r\n')
    },
  },
]

describe('memory per session stays within header limit + spool threshold, whatever the chunking', () => {
  for (const shape of shapes) {
    describe(shape.name, () => {
      let srv: TestServer
      let held = Number.NaN
      before(async () => {
        srv = await startTestServer({
          plugins: [acceptAllRecipients(), holdingQueue(() => (held = retainedBytes()))],
          memoryQueue: false,
          spoolMemoryThreshold: THRESHOLD,
          logLevel: 3,
        })
      })
      after(() => srv.close())

      test(`${SESSIONS} sessions hold their messages at once`, async () => {
        const clients = await Promise.all(Array.from({ length: SESSIONS }, () => Client.open(srv.port)))
        await Promise.all(clients.map((c) => c.envelope()))
        const baseline = retainedBytes()
        await Promise.all(clients.map((c) => shape.send(c, shape.payload)))
        await Promise.all(clients.map((c) => c.until('451 ', 1)))
        for (const c of clients) c.socket.destroy()
        const perSession = (held - baseline) / SESSIONS
        const bound = defaultLimits.headerSize + THRESHOLD + BUFFERS
        assert.ok(perSession < bound, `${Math.round(perSession / 1024)} KiB per session (bound ${bound / 1024} KiB)`)
      })
    })
  }
})
