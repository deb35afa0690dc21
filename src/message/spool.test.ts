import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { setTimeout } from 'node:timers/promises'
import { finalMessageBuffer } from './final-message.ts'
import { FIELD_COST } from './header-scanner.ts'
import type { HeaderBlock } from './headers.ts'
import { MessageSpool, type MessageSpoolOptions } from './spool.ts'
import { retainedBytes, samples } from './test-fixtures.ts'

let root: string
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'qtsmtpd-spool-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

let dirs = 0
const freshDir = (): string => join(root, `spool-${dirs++}`) // not created: the spool creates it

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of r) parts.push(c as Buffer)
  return Buffer.concat(parts)
}

async function spoolOf(chunks: readonly Buffer[], opts: Partial<MessageSpoolOptions> = {}): Promise<MessageSpool> {
  const spool = new MessageSpool({ spoolDir: freshDir(), ...opts })
  for (const c of chunks) if (!spool.write(c)) await spool.drained()
  await spool.end()
  return spool
}

function expectSample(spool: MessageSpool, s: (typeof samples)[number], body: Buffer, label: string): void {
  assert.deepEqual(
    spool.headers.fields.map((f) => f.name),
    s.names,
    label,
  )
  assert.equal(spool.hasSeparator, s.hasSeparator, label)
  assert.deepEqual(body, s.body, label)
  assert.equal(spool.size, s.message.length, label)
  assert.equal(spool.bodySize, s.body.length, label)
  assert.equal(spool.headerSize + spool.bodySize, spool.size, label)
}

describe('MessageSpool: header/body split across chunk boundaries', () => {
  for (const s of samples) {
    it(`${s.name}: split at every offset, and one byte at a time`, async () => {
      const m = s.message
      const splits: Buffer[][] = []
      for (let i = 0; i <= m.length; i++) splits.push([m.subarray(0, i), m.subarray(i)])
      splits.push(Array.from(m, (_, i) => m.subarray(i, i + 1)))
      for (const [n, chunks] of splits.entries()) {
        const spool = await spoolOf(chunks)
        expectSample(spool, s, await collect(spool.bodyStream()), `split ${n}`)
        assert.deepEqual(spool.headers.toBuffer(), Buffer.concat(spool.headers.fields.map((f) => f.raw)))
        assert.deepEqual(await finalMessageBuffer(spool), m, `byte-exact, split ${n}`)
      }
    })
  }

  it('every pair of split points gives identical fields (folded sample)', async () => {
    const s = samples[1]!
    const m = s.message
    const want = (await spoolOf([m])).headers.fields
    for (let i = 0; i <= m.length; i++) {
      for (let j = i; j <= m.length; j++) {
        const spool = await spoolOf([m.subarray(0, i), m.subarray(i, j), m.subarray(j)])
        assert.deepEqual(spool.headers.fields, want, `${i},${j}`)
        assert.deepEqual(await collect(spool.bodyStream()), s.body, `${i},${j}`)
      }
    }
  })

  it('onHeaders fires once, as soon as the header section is complete', async () => {
    const seen: HeaderBlock[] = []
    const spool = new MessageSpool({ spoolDir: freshDir(), onHeaders: (h) => seen.push(h) })
    assert.equal(spool.headersComplete, false)
    assert.throws(() => spool.headers)
    spool.write(Buffer.from('Subject: x\r\nReceived: a\r\nReceived: b\r'))
    assert.equal(seen.length, 0)
    spool.write(Buffer.from('\n\r\nbody\r\n'))
    assert.equal(seen.length, 1)
    assert.equal(spool.receivedCount, 2)
    spool.write(Buffer.from('more\r\n'))
    await spool.end()
    assert.equal(seen.length, 1)
    assert.equal(seen[0], spool.headers)
  })

  it('onHeaders fires at end() for a headers-only message; a throwing callback fails end()', async () => {
    let calls = 0
    const spool = new MessageSpool({
      spoolDir: freshDir(),
      onHeaders: () => {
        calls++
        throw new Error('boom')
      },
    })
    spool.write(Buffer.from('Subject: x\r\n'))
    assert.equal(calls, 0)
    await assert.rejects(spool.end(), /boom/)
    assert.equal(calls, 1)
  })

  it('write after end throws', async () => {
    const spool = await spoolOf([Buffer.from('a: b\r\n\r\n')])
    assert.throws(() => spool.write(Buffer.from('x')))
  })
})

describe('MessageSpool: header size limit', () => {
  it('sets headerTooBig past maxHeaderBytes, keeps counting, keeps earlier fields only', async () => {
    const big = `X-Big: ${'y'.repeat(2000)}\r\n`
    const msg = Buffer.from(`Subject: s\r\n${big}${big}X-After: 1\r\n\r\nbody\r\n`)
    for (const size of [msg.length, 100, 7]) {
      const chunks: Buffer[] = []
      for (let i = 0; i < msg.length; i += size) chunks.push(msg.subarray(i, i + size))
      const spool = await spoolOf(chunks, { maxHeaderBytes: 1024 })
      assert.equal(spool.headerTooBig, true)
      assert.deepEqual(
        spool.headers.fields.map((f) => f.name),
        ['Subject'],
      )
      assert.equal(spool.headerSize, msg.length - 'body\r\n'.length)
      assert.equal(spool.size, msg.length)
      assert.deepEqual(await collect(spool.bodyStream()), Buffer.from('body\r\n'))
    }
  })

  it('a long body line never counts as header bytes', async () => {
    const spool = await spoolOf([Buffer.from(`${'z'.repeat(5000)}\r\n`)], { maxHeaderBytes: 1024 })
    assert.equal(spool.headerTooBig, false)
    assert.equal(spool.bodySize, 5002)
  })

  it('exactly at the limit is fine: a field counts its octets plus FIELD_COST', async () => {
    const h = 'Subject: 0123456789\r\n'
    const at = await spoolOf([Buffer.from(`${h}\r\nb`)], { maxHeaderBytes: h.length + FIELD_COST })
    assert.equal(at.headerTooBig, false)
    const over = await spoolOf([Buffer.from(`${h}\r\nb`)], { maxHeaderBytes: h.length + FIELD_COST - 1 })
    assert.equal(over.headerTooBig, true)
  })
})

describe('MessageSpool: memory and file', () => {
  const threshold = 1024
  const header = Buffer.from('Subject: big\r\n\r\n')

  async function fill(bodyBytes: number, spoolDir: string): Promise<{ spool: MessageSpool; body: Buffer }> {
    const body = Buffer.alloc(bodyBytes, 'abcdefgh\r\n')
    const spool = new MessageSpool({ spoolDir, memoryThreshold: threshold })
    const msg = Buffer.concat([header, body])
    for (let i = 0; i < msg.length; i += 100) if (!spool.write(msg.subarray(i, i + 100))) await spool.drained()
    await spool.end()
    return { spool, body }
  }

  it('keeps a body at the threshold in memory: no file', async () => {
    const dir = freshDir()
    const { spool, body } = await fill(threshold, dir)
    assert.equal(spool.onDisk, false)
    await assert.rejects(readdir(dir), { code: 'ENOENT' }) // directory not even created
    assert.deepEqual(await collect(spool.bodyStream()), body)
    await spool.cleanup()
  })

  it('moves a body over the threshold to a 0600 file in a 0700 dir; cleanup removes it', async () => {
    const dir = freshDir()
    const { spool, body } = await fill(threshold + 1, dir)
    assert.equal(spool.onDisk, true)
    const files = await readdir(dir)
    assert.equal(files.length, 1)
    assert.match(files[0]!, /^\d+\.\d+\.[0-9a-f]+$/)
    assert.equal((await stat(dir)).mode & 0o777, 0o700)
    assert.equal((await stat(join(dir, files[0]!))).mode & 0o777, 0o600)
    assert.deepEqual(await readFile(join(dir, files[0]!)), body)
    assert.equal(await spool.bodyPath(), join(dir, files[0]!))
    // readable as often as needed
    assert.deepEqual(await collect(spool.bodyStream()), body)
    assert.deepEqual(await collect(spool.bodyStream()), body)
    assert.deepEqual(await finalMessageBuffer(spool), Buffer.concat([header, body]))
    await spool.cleanup()
    assert.deepEqual(await readdir(dir), [])
    await spool.cleanup() // idempotent
    assert.throws(() => spool.bodyStream())
  })

  it('bodyStream twice from memory gives the same bytes', async () => {
    const { spool, body } = await fill(500, freshDir())
    assert.deepEqual(await collect(spool.bodyStream()), body)
    assert.deepEqual(await collect(spool.bodyStream()), body)
  })

  it('bodyPath() writes a memory body to a file once', async () => {
    const dir = freshDir()
    const { spool, body } = await fill(10, dir)
    const [p1, p2] = await Promise.all([spool.bodyPath(), spool.bodyPath()])
    assert.equal(p1, p2)
    assert.deepEqual(await readFile(p1), body)
    assert.deepEqual(await collect(spool.bodyStream()), body)
    assert.equal((await readdir(dir)).length, 1)
    await spool.cleanup()
    assert.deepEqual(await readdir(dir), [])
  })

  it('bodyPath() of an empty body is an empty file', async () => {
    const spool = await spoolOf([Buffer.from('Subject: x\r\n')])
    assert.deepEqual(await readFile(await spool.bodyPath()), Buffer.alloc(0))
    await spool.cleanup()
  })

  it('abort() while receiving removes the file', async () => {
    const dir = freshDir()
    const spool = new MessageSpool({ spoolDir: dir, memoryThreshold: threshold })
    spool.write(header)
    spool.write(Buffer.alloc(threshold * 4, 'x'))
    await spool.drained()
    for (let i = 0; i < 100 && (await readdir(dir).catch(() => [])).length === 0; i++) await setTimeout(10)
    assert.equal((await readdir(dir)).length, 1)
    await spool.abort()
    assert.deepEqual(await readdir(dir), [])
    assert.throws(() => spool.write(Buffer.from('x')))
    assert.throws(() => spool.bodyStream())
  })

  it('abort() right after the switch, before the file is open, leaves nothing', async () => {
    const dir = freshDir()
    const spool = new MessageSpool({ spoolDir: dir, memoryThreshold: 10 })
    spool.write(Buffer.from('\r\n0123456789abcdef'))
    await spool.abort()
    assert.deepEqual(await readdir(dir).catch(() => []), [])
  })

  it('end() rejects when the spool directory cannot be created', async () => {
    const blocker = join(root, 'a-file')
    await writeFile(blocker, '')
    const spool = new MessageSpool({ spoolDir: join(blocker, 'sub'), memoryThreshold: 10 })
    spool.write(Buffer.from('\r\n'))
    spool.write(Buffer.alloc(100, 'x'))
    await spool.drained() // never hangs on an error
    await assert.rejects(spool.end(), { code: 'ENOTDIR' })
    await spool.cleanup()
  })
})

describe('MessageSpool: backpressure and memory', () => {
  it('20 MB in 64 KiB chunks: write() returns false, drained() resolves, RSS stays low', async () => {
    const dir = freshDir()
    const spool = new MessageSpool({ spoolDir: dir })
    const chunk = Buffer.alloc(64 * 1024, 'The quick brown fox jumps over the lazy dog.\r\n')
    const total = 20 * 1024 * 1024
    const hash = createHash('sha256')
    const head = Buffer.from('Subject: big\r\n\r\n')
    globalThis.gc?.()
    const rss0 = process.memoryUsage().rss
    let falses = 0
    let maxRss = rss0
    spool.write(head)
    for (let sent = 0; sent < total; sent += chunk.length) {
      // a fresh buffer per chunk, as a socket would deliver
      const c = Buffer.from(chunk)
      hash.update(c)
      if (!spool.write(c)) {
        falses++
        await spool.drained()
      }
      if (sent % (1024 * 1024) === 0) maxRss = Math.max(maxRss, process.memoryUsage().rss)
    }
    await spool.end()
    assert.ok(falses > 0, 'backpressure was signalled')
    assert.ok(maxRss - rss0 < 100 * 1024 * 1024, `rss grew by ${(maxRss - rss0) >> 20} MB`)
    assert.equal(spool.bodySize, total)
    assert.equal(spool.size, total + head.length)
    const files = await readdir(dir)
    assert.equal((await stat(join(dir, files[0]!))).size, total)
    const back = createHash('sha256')
    for await (const c of spool.bodyStream()) back.update(c as Buffer)
    assert.equal(back.digest('hex'), hash.digest('hex'))
    await spool.cleanup()
    assert.deepEqual(await readdir(dir), [])
  })
})

describe('MessageSpool: memory is bounded by the limits, whatever the chunking (issue 18 F1)', () => {
  const threshold = 256 * 1024
  const maxHeaderBytes = 100 * 1024
  /** `first`, then `n` times `piece`, each a slice of one buffer, as the codec's chunks are of a socket read. */
  function chunked(first: string, piece: string, n: number): () => Generator<Buffer> {
    const all = Buffer.from(first + piece.repeat(n))
    return function* () {
      yield all.subarray(0, first.length)
      for (let at = first.length; at < all.length; at += piece.length) yield all.subarray(at, at + piece.length)
    }
  }
  // What the codec emits for these inputs: one chunk per dot-stuffed line, one per BDAT chunk.
  const shapes = [
    { name: 'dot-stuffed flood: one 3-octet chunk per line', chunks: chunked('\r\n', '.\r\n', 85_000) },
    { name: 'BDAT 1 flood: one-octet body chunks', chunks: chunked('\r\n', 'x', 99_000) },
    { name: 'one-octet chunks in a header line', chunks: chunked('Subject: ', 'x', 99_000) },
    { name: 'one-octet folded lines', chunks: chunked('Subject: x\r\n', ' \r\n', 33_000) },
    { name: 'thousands of tiny fields', chunks: chunked('', 'a:\r\n', 25_000) },
  ]

  for (const shape of shapes) {
    it(`${shape.name}: no more than maxHeaderBytes + memoryThreshold per message while it arrives`, () => {
      const spools: MessageSpool[] = []
      const before = retainedBytes()
      for (let i = 0; i < 6; i++) {
        const spool = new MessageSpool({ spoolDir: freshDir(), memoryThreshold: threshold, maxHeaderBytes })
        for (const c of shape.chunks()) spool.write(c)
        spools.push(spool)
      }
      const perSpool = (retainedBytes() - before) / spools.length
      assert.ok(spools.every((s) => !s.onDisk))
      assert.ok(perSpool < threshold + maxHeaderBytes, `${Math.round(perSpool / 1024)} KiB per message`)
    })
  }
})
