/**
 * Fuzzers for content that arrives in tiny pieces (issue 18 F1): `node test/fuzz/flood.fuzz.ts [seconds] [seed]`.
 *
 * Messages are built of many short lines, most starting with dots (so DATA carries a dot-stuffed
 * flood, and the codec emits one chunk per line), or are sent as BDAT chunks of one to three octets.
 * - Spool: codec and MessageSpool together, random memory thresholds (memory or file), random reads.
 *   Invariants: the final message equals the one sent, byte for byte, and its header fields are those
 *   HeaderBlock.parse finds in one piece. Once per run, six floods held at once must not cost more
 *   than header limit + spool threshold (+ one read and one block) each.
 * - Sessions: the same messages over TCP to a test server. Invariants: one reply per command (a 250
 *   per BDAT chunk, one for the message), and the stored message is the one sent after our Received.
 * Seeded, so a failure prints a seed and the case that reproduce it.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setImmediate } from 'node:timers/promises'
import { finalMessageBuffer } from '../../src/message/final-message.ts'
import { HeaderBlock } from '../../src/message/headers.ts'
import { MessageSpool } from '../../src/message/spool.ts'
import { retainedBytes } from '../../src/message/test-fixtures.ts'
import { type MessageScanOptions, SmtpCodec } from '../../src/protocol/codec.ts'
import { acceptAllRecipients, SmtpTestClient, startTestServer } from '../../src/testing/index.ts'
import { forSeconds, pick, rng } from './random.ts'

const HEADER_LINES = ['Subject: flood', '.X-Dot: field name with a dot', 'X-Empty:', ' folded', '\tfolded', 'a:', '..:']
const BODY_LINES = ['.', '..', '...', '.x', '. ', '', 'x', '.\t.', 'From x']

/**
 * A message (CRLF lines) with a few header lines and up to `maxLines` short, mostly dotted body
 * lines; with `separator` always an empty line after the header section.
 */
function randomMessage(rand: () => number, maxLines: number, separator = false): Buffer {
  const lines: string[] = []
  const fields = Math.floor(rand() * 6)
  for (let i = 0; i < fields; i++) lines.push(pick(rand, HEADER_LINES))
  if (separator || rand() < 0.8) lines.push('')
  const n = Math.floor(rand() * maxLines)
  for (let i = 0; i < n; i++) lines.push(pick(rand, BODY_LINES))
  return Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1')
}

/** DATA: dot-stuffed lines and the final dot. */
function dataWire(message: Buffer): Buffer {
  const text = message.toString('latin1')
  const stuffed = text.replace(/(^|\r\n)\./g, '$1..')
  return Buffer.from(`${stuffed}.\r\n`, 'latin1')
}

/** BDAT: chunks of one to three octets, the last one (or an empty one) with LAST. */
function bdatWire(rand: () => number, message: Buffer): { wire: Buffer; chunks: number } {
  const parts: Buffer[] = []
  let chunks = 0
  for (let at = 0; at < message.length; ) {
    const n = Math.min(message.length - at, 1 + Math.floor(rand() * 3))
    const last = at + n === message.length && rand() < 0.5
    parts.push(Buffer.from(`BDAT ${n}${last ? ' LAST' : ''}\r\n`), message.subarray(at, at + n))
    chunks++
    at += n
    if (last) return { wire: Buffer.concat(parts), chunks }
  }
  parts.push(Buffer.from('BDAT 0 LAST\r\n'))
  return { wire: Buffer.concat(parts), chunks: chunks + 1 }
}

/** Random reads: often one octet, sometimes a few hundred, sometimes the rest. */
function reads(rand: () => number, wire: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let at = 0; at < wire.length; ) {
    const r = rand()
    const n = r < 0.3 ? 1 : r < 0.9 ? 1 + Math.floor(rand() * 600) : wire.length - at
    out.push(wire.subarray(at, at + n))
    at += n
  }
  return out
}

const scan: MessageScanOptions = {
  maxMessageSize: 1 << 30,
  maxLineLength: 998,
  bareLineEndings: 'reject',
  binary: false,
}

/**
 * Feeds the reads through a codec into a spool as a session does: in content mode from the start
 * for DATA; BDAT command lines switch it for each chunk. Returns the spool, ended, or not when `hold`.
 */
async function spoolThrough(
  pieces: readonly Buffer[],
  data: boolean,
  opts: { spoolDir: string; memoryThreshold: number; maxHeaderBytes: number },
  hold = false,
): Promise<MessageSpool> {
  const codec = new SmtpCodec()
  const spool = new MessageSpool(opts)
  codec.beginMessage(scan)
  if (data) codec.startData()
  for (const piece of pieces) {
    codec.push(piece)
    for (let ev = codec.next(); ev !== undefined; ev = codec.next()) {
      if (ev.type === 'command') {
        const m = /^BDAT (\d+)( LAST)?$/.exec(ev.line.toString('latin1'))
        if (m === null) throw new Error(`unexpected command ${ev.line.toString('latin1')}`)
        codec.startBdat(Number(m[1]), m[2] !== undefined)
      } else if (ev.type === 'command-error') throw new Error(`command error ${ev.error}`)
      else if (ev.type === 'data') {
        if (!spool.write(ev.chunk)) await spool.drained()
      } else {
        const { bareLf, bareCr, longLine } = ev.result
        if (bareLf + bareCr > 0 || longLine) throw new Error(`content flagged ${JSON.stringify(ev.result)}`)
      }
    }
  }
  if (!hold) await spool.end()
  return spool
}

const sameFields = (a: HeaderBlock, b: HeaderBlock): boolean =>
  a.fields.length === b.fields.length &&
  a.fields.every((f, i) => f.name === b.fields[i]?.name && f.raw.equals(b.fields[i]?.raw ?? Buffer.alloc(0)))

/** Six floods held at once cost no more than the limits promise (a GC'd measurement, once per run). */
async function checkMemoryBound(rand: () => number, spoolDir: string, seed: number): Promise<void> {
  const limits = { spoolDir, memoryThreshold: 256 * 1024, maxHeaderBytes: 100 * 1024 }
  const flood = randomMessage(rand, 60_000)
  const message = flood.subarray(0, flood.lastIndexOf('\r\n', 100 * 1024) + 2) // whole lines, in memory
  const data = rand() < 0.5
  const wire = data ? dataWire(message) : bdatWire(rand, message).wire
  const pieces = reads(rand, wire)
  const before = retainedBytes()
  const held = [] as MessageSpool[]
  for (let i = 0; i < 6; i++) held.push(await spoolThrough(pieces, data, limits, true))
  const perSpool = (retainedBytes() - before) / held.length
  for (const s of held) await s.abort()
  const bound = limits.memoryThreshold + limits.maxHeaderBytes + 128 * 1024
  if (perSpool >= bound)
    throw new Error(
      `flood spool: ${message.length} octets by ${data ? 'DATA' : 'BDAT'} hold ${Math.round(perSpool / 1024)} KiB ` +
        `per message (bound ${bound / 1024} KiB)\nseed=${seed}`,
    )
}

/** Codec and spool, for about `seconds`; throws with the seed and case on the first failure. */
export async function fuzzFloodSpool(seconds: number, seed = Date.now()): Promise<{ iterations: number }> {
  const rand = rng(seed)
  const spoolDir = await mkdtemp(join(tmpdir(), 'qtsmtpd-flood-fuzz-'))
  const more = forSeconds(seconds)
  let iterations = 0
  try {
    await checkMemoryBound(rand, spoolDir, seed)
    while (more()) {
      const message = randomMessage(rand, rand() < 0.1 ? 20_000 : 400)
      const data = rand() < 0.5
      const wire = data ? dataWire(message) : bdatWire(rand, message).wire
      const memoryThreshold = pick(rand, [0, 1, 100, 16 * 1024, 256 * 1024])
      const maxHeaderBytes = pick(rand, [1 << 30, 64 * 1024])
      const fail = (what: string): never => {
        throw new Error(
          `flood spool: ${what}\nseed=${seed} iteration=${iterations} data=${data} threshold=${memoryThreshold}\n` +
            `message=${JSON.stringify(message.toString('latin1').slice(0, 2000))}`,
        )
      }
      const spool = await spoolThrough(reads(rand, wire), data, { spoolDir, memoryThreshold, maxHeaderBytes }).catch(
        (e: unknown) => fail(String(e)),
      )
      try {
        if (!(await finalMessageBuffer(spool)).equals(message)) fail('the final message differs from the one sent')
        if (!sameFields(spool.headers, HeaderBlock.parse(message).headers)) fail('header fields differ')
      } finally {
        await spool.cleanup()
      }
      iterations++
      if (iterations % 20 === 0) await setImmediate()
    }
  } finally {
    await rm(spoolDir, { recursive: true, force: true })
  }
  return { iterations }
}

/** Sessions over TCP, for about `seconds`; throws with the seed and case on the first failure. */
export async function fuzzFloodSessions(seconds: number, seed = Date.now()): Promise<{ iterations: number }> {
  const rand = rng(seed)
  const srv = await startTestServer({ plugins: [acceptAllRecipients()], logLevel: 2 })
  let iterations = 0
  try {
    const more = forSeconds(seconds)
    while (more()) {
      // With a separator, so that the stored message is exactly Received + the message.
      const message = randomMessage(rand, 3000, true)
      const data = rand() < 0.5
      const bdat = bdatWire(rand, message)
      const fail = (what: string): never => {
        throw new Error(
          `flood session: ${what}\nseed=${seed} iteration=${iterations} data=${data}\n` +
            `message=${JSON.stringify(message.toString('latin1').slice(0, 2000))}`,
        )
      }
      const stored = srv.queued.length
      const c = await SmtpTestClient.connect(srv.port)
      try {
        await c.expect(220)
        await c.send('EHLO client.test', 250)
        c.write('MAIL FROM:<a@remote.test>\r\nRCPT TO:<u@local.test>\r\n')
        await c.expect(250)
        await c.expect(250)
        if (data) {
          await c.send('DATA', 354)
          for (const r of reads(rand, dataWire(message))) c.write(r)
        } else {
          for (const r of reads(rand, bdat.wire)) c.write(r)
          for (let i = 1; i < bdat.chunks; i++) await c.expect(/^250 2\.0\.0 \d+ octets received/)
        }
        await c.expect(/^250 2\.0\.0 Queued as /).catch((e: unknown) => fail(String(e)))
        await c.send('NOOP', /^250 /).catch((e: unknown) => fail(`after the message: ${String(e)}`))
        const got = srv.queued.at(-1)?.data
        if (srv.queued.length !== stored + 1 || got === undefined) fail('not stored once')
        else if (
          !got.subarray(0, 10).equals(Buffer.from('Received: ')) ||
          !got.subarray(-message.length).equals(message)
        )
          fail('the stored message is not Received + the message sent')
      } finally {
        c.destroy()
      }
      iterations++
      await setImmediate()
    }
  } finally {
    await srv.close()
  }
  return { iterations }
}

if (import.meta.main) {
  const seconds = Number(process.argv[2] ?? 3)
  const seed = process.argv[3] === undefined ? Date.now() : Number(process.argv[3])
  const a = await fuzzFloodSpool(seconds, seed)
  const b = await fuzzFloodSessions(seconds, seed)
  console.log(`flood fuzz: ${a.iterations} spools, ${b.iterations} sessions, seed ${seed}, no failures`)
}
