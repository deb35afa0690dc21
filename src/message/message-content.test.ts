import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { finalMessageBuffer } from './final-message.ts'
import { type BodySource, MessageContent } from './message-content.ts'
import { MessageSpool } from './spool.ts'

let root: string
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'qtsmtpd-content-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

async function contentOf(
  message: string,
  opts: { memoryThreshold?: number; normalize?: boolean; editable?: () => boolean } = {},
): Promise<{ content: MessageContent; dir: string }> {
  const dir = await mkdtemp(join(root, 'm-'))
  const spool = new MessageSpool({ spoolDir: dir, memoryThreshold: opts.memoryThreshold ?? 256 * 1024 })
  spool.write(Buffer.from(message))
  await spool.end()
  const content = new MessageContent(spool, {
    normalizeLineEndings: opts.normalize ?? true,
    ...(opts.editable === undefined ? {} : { editable: opts.editable }),
  })
  return { content, dir }
}

const text = async (r: Readable): Promise<string> => Buffer.concat(await r.toArray()).toString('latin1')

describe('MessageContent.replaceBody', () => {
  const sources: { label: string; source: () => BodySource }[] = [
    { label: 'a string', source: () => 'new body\r\n' },
    { label: 'a Buffer', source: () => Buffer.from('new body\r\n') },
    { label: 'a Uint8Array', source: () => new TextEncoder().encode('new body\r\n') },
    { label: 'a Readable', source: () => Readable.from([Buffer.from('new '), Buffer.from('body\r\n')]) },
    { label: 'a Readable with an encoding (strings)', source: () => Readable.from(['new ', 'body\r\n']) },
    {
      label: 'an async generator of Buffers',
      source: () =>
        (async function* () {
          yield Buffer.from('new bo')
          yield Buffer.from('dy\r\n')
        })(),
    },
  ]
  for (const s of sources) {
    it(`takes ${s.label}; headers stay, sizes follow`, async () => {
      const { content } = await contentOf('Subject: s\r\n\r\nold body\r\n')
      await content.replaceBody(s.source())
      assert.equal(content.bodyReplaced, true)
      assert.equal(await text(content.bodyStream()), 'new body\r\n')
      assert.equal(await text(content.stream()), 'Subject: s\r\n\r\nnew body\r\n')
      assert.equal(content.bodySize, 10)
      assert.equal(content.size, 'Subject: s\r\n\r\nnew body\r\n'.length)
      await content.cleanup()
    })
  }

  it('makes bare LF and bare CR CRLF, across chunk boundaries', async () => {
    const { content } = await contentOf('Subject: s\r\n\r\nold\r\n')
    await content.replaceBody(Readable.from([Buffer.from('a\nb\r'), Buffer.from('\nc\r'), Buffer.from('d\r')]))
    assert.equal(await text(content.bodyStream()), 'a\r\nb\r\nc\r\nd\r\n')
    await content.cleanup()
  })

  it('keeps a BINARYMIME body byte for byte', async () => {
    const { content } = await contentOf('Subject: s\r\n\r\nold\r\n', { normalize: false })
    const binary = Buffer.from([0x00, 0x0a, 0x0d, 0xff, 0x0d])
    await content.replaceBody(binary)
    assert.deepEqual(Buffer.concat(await content.bodyStream().toArray()), binary)
    await content.cleanup()
  })

  it('adds the separator a headers-only message needs once it has a body', async () => {
    const { content } = await contentOf('Subject: s\r\n')
    await content.replaceBody('now a body\r\n')
    assert.equal(await text(content.stream()), 'Subject: s\r\n\r\nnow a body\r\n')
    await content.cleanup()
  })

  it('removes the old body file and puts a large new body in a file of its own', async () => {
    const { content, dir } = await contentOf(`Subject: s\r\n\r\n${'old line\r\n'.repeat(1000)}`, {
      memoryThreshold: 1024,
    })
    const oldPath = await content.bodyPath()
    assert.deepEqual(await readdir(dir), [oldPath.slice(dir.length + 1)])
    const line = Buffer.from('new line\r\n')
    await content.replaceBody(Readable.from(Array.from({ length: 500 }, () => line)))
    const newPath = await content.bodyPath()
    assert.notEqual(newPath, oldPath)
    assert.deepEqual(await readdir(dir), [newPath.slice(dir.length + 1)], 'only the new body is on disk')
    assert.equal((await readFile(newPath)).toString(), 'new line\r\n'.repeat(500))
    assert.equal(content.bodySize, 5000)
    await content.cleanup()
    assert.deepEqual(await readdir(dir), [])
  })

  it('replaces twice, in call order, removing each old body', async () => {
    const { content, dir } = await contentOf('Subject: s\r\n\r\nold\r\n', { memoryThreshold: 8 })
    await Promise.all([content.replaceBody('first body\r\n'), content.replaceBody('second body\r\n')])
    assert.equal(await text(content.bodyStream()), 'second body\r\n')
    assert.equal((await readdir(dir)).length, 1)
    await content.cleanup()
  })

  it('a failing source leaves the old body in place and no file behind', async () => {
    const { content, dir } = await contentOf('Subject: s\r\n\r\nold body\r\n', { memoryThreshold: 16 })
    const failing = (async function* () {
      yield Buffer.from('partial new body, past the threshold\r\n')
      throw new Error('scanner went away')
    })()
    await assert.rejects(content.replaceBody(failing), /scanner went away/)
    assert.equal(content.bodyReplaced, false)
    assert.equal(await text(content.bodyStream()), 'old body\r\n')
    assert.deepEqual(await readdir(dir), [])
    await content.cleanup()
  })

  it('refuses chunks that are not bytes, and sources that are not iterable', async () => {
    const { content } = await contentOf('Subject: s\r\n\r\nold\r\n')
    await assert.rejects(content.replaceBody(Readable.from([{ not: 'bytes' }])), TypeError)
    await assert.rejects(content.replaceBody(42 as unknown as BodySource), TypeError)
    assert.equal(await text(content.bodyStream()), 'old\r\n')
    await content.cleanup()
  })

  it('a replacement that completes after edits closed is dropped, its file removed', async () => {
    let open = true
    const { content, dir } = await contentOf('Subject: s\r\n\r\nold\r\n', { memoryThreshold: 8, editable: () => open })
    const slow = (async function* () {
      yield Buffer.from('new body, written while the hook times out\r\n')
      open = false
    })()
    await assert.rejects(content.replaceBody(slow), /stopped taking edits/)
    assert.equal(await text(content.bodyStream()), 'old\r\n')
    assert.deepEqual(await readdir(dir), [])
    await content.cleanup()
  })

  it('cleanup() during a replacement drops it and leaves no file', async () => {
    const { content, dir } = await contentOf('Subject: s\r\n\r\nold\r\n', { memoryThreshold: 8 })
    let release = () => {}
    const gate = new Promise<void>((r) => {
      release = r
    })
    const slow = (async function* () {
      yield Buffer.from('first half\r\n')
      await gate
      yield Buffer.from('second half\r\n')
    })()
    const replacing = content.replaceBody(slow)
    await new Promise((r) => setTimeout(r, 20))
    await content.cleanup()
    release()
    await assert.rejects(replacing)
    assert.deepEqual(await readdir(dir), [])
    await assert.rejects(content.replaceBody('too late\r\n'), /no longer open/)
  })

  it('an old body file that cannot be removed fails neither the replacement nor hides from cleanup()', async () => {
    const { content, dir } = await contentOf(`Subject: s\r\n\r\n${'x'.repeat(100)}\r\n`, { memoryThreshold: 8 })
    const oldPath = await content.bodyPath()
    // Root ignores file modes: a non-empty directory in its place makes unlink() fail (EISDIR).
    await rm(oldPath)
    await mkdir(oldPath)
    await writeFile(join(oldPath, 'keep'), '')
    await content.replaceBody('new\r\n')
    assert.equal(await text(content.bodyStream()), 'new\r\n')
    await assert.rejects(content.cleanup())
    assert.deepEqual(await readdir(dir), [basename(oldPath)])
    await rm(oldPath, { recursive: true })
  })

  it('the final message of an unedited content is the received bytes', async () => {
    const message = 'Subject: s\r\nX-A: 1\r\n\r\nbody\r\n'
    const { content } = await contentOf(message)
    assert.equal((await finalMessageBuffer(content)).toString(), message)
    assert.equal(content.size, message.length)
    await content.cleanup()
  })
})
