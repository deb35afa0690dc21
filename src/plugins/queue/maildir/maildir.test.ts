import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { readMaildirOverImap } from '../../../../test/peers/dovecot-imap.ts'
import { maildirHostname, maildirUniqueName } from '../../../files/durable-file.ts'
import { startTestServer, type TestServer, type TestServerOptions, withTestServer } from '../../../testing/index.ts'
import { acceptRcpt, receivedPattern, sendMailSession } from '../../test-support.ts'
import maildir from './index.ts'
import { encodePathComponent, expandPattern } from './path.ts'

const CONTENT = 'Subject: hello\r\nFrom: <sender@example.org>\r\n\r\nbody line\r\n..leading dot\r\n'
/** What is stored after the trace fields: LF line ends, as qmail-local, Postfix and Dovecot write. */
const STORED_TAIL = 'Subject: hello\nFrom: <sender@example.org>\n\nbody line\n.leading dot\n'
/** The core's Received field, with LF line ends as stored. */
const storedReceived = (opts: Parameters<typeof receivedPattern>[0]) =>
  receivedPattern(opts).replaceAll('\\r\\n', '\\n')

let base: string
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'qtsmtpd-maildir-test-'))
})
after(async () => {
  await rm(base, { recursive: true, force: true })
})

async function files(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [])).sort()
}

async function onlyFile(dir: string): Promise<Buffer> {
  const list = await files(dir)
  assert.equal(list.length, 1, `one file in ${dir}, found ${list.join(', ')}`)
  return readFile(join(dir, list[0] as string))
}

const withServer = (
  options: Record<string, string>,
  run: (srv: TestServer) => Promise<void>,
  extra: TestServerOptions = {},
): Promise<void> => withTestServer({ plugins: [acceptRcpt(), maildir(options)], memoryQueue: false, ...extra }, run)

const transaction = (srv: TestServer, to: string[]) => sendMailSession(srv, 'sender@example.org', to, CONTENT)

const queuedId = (raw: string): string => {
  const m = /^250 2\.0\.0 Queued as ([0-9a-z]{22})\r\n$/.exec(raw)
  assert.ok(m, `expected "250 2.0.0 Queued as <id>", got ${JSON.stringify(raw)}`)
  return m[1] as string
}

describe('queue/maildir path encoding', () => {
  const cases = [
    { name: 'ordinary', in: 'john.doe+tag', want: 'john.doe+tag' },
    { name: 'traversal', in: '../../etc', want: '%2E%2E%2F.%2E%2Fetc' },
    { name: 'hidden', in: '.profile', want: '%2Eprofile' },
    { name: 'double dot inside', in: 'a..b', want: 'a.%2Eb' },
    { name: 'slash and space', in: 'a/b c', want: 'a%2Fb%20c' },
    { name: 'percent is encoded (reversible)', in: '100%', want: '100%25' },
    { name: 'NUL', in: 'a\0b', want: 'a%00b' },
    { name: 'non-ASCII per UTF-8 byte', in: 'jörg', want: 'j%C3%B6rg' },
    { name: 'empty', in: '', want: '%empty' },
  ]
  for (const c of cases) it(c.name, () => assert.equal(encodePathComponent(c.in), c.want))

  it('expands %l %d %u and lower-cases the domain', () => {
    assert.equal(expandPattern('%d/%l', { local: 'User', domain: 'Example.COM' }), 'example.com/User')
    assert.equal(expandPattern('%u', { local: '../x', domain: 'x.test' }), '%2E%2E%2Fx@x.test')
    assert.equal(expandPattern('100%%/%l', { local: 'a', domain: 'b' }), '100%/a')
  })

  it('unique names follow the maildir spec', () => {
    assert.equal(maildirHostname('a/b:c'), 'a\\057b\\072c')
    const n = maildirUniqueName(1_700_000_000_123.456, 'mx')
    assert.match(n, new RegExp(`^1700000000\\.M123456P${process.pid}Q\\d+\\.mx$`))
    assert.notEqual(maildirUniqueName(), maildirUniqueName())
  })
})

describe('queue/maildir delivery', () => {
  it('one recipient: Return-Path, Delivered-To, Received, then the message byte for byte', async () => {
    const dir = join(base, 'single')
    await withServer({ path: dir }, async (srv) => {
      const r = await transaction(srv, ['user@Example.COM'])
      const id = queuedId(r.raw)
      for (const sub of ['cur', 'tmp']) assert.deepEqual(await files(join(dir, sub)), [])
      const name = (await files(join(dir, 'new')))[0] ?? ''
      assert.match(name, new RegExp(`^\\d+\\.M\\d+P${process.pid}Q\\d+\\.${maildirHostname().replace(/\W/g, '\\$&')}$`))
      const stored = (await onlyFile(join(dir, 'new'))).toString('utf8')
      const want = new RegExp(
        '^Return-Path: <sender@example\\.org>\\nDelivered-To: user@Example\\.COM\\n' +
          storedReceived({ helo: 'client.test', me: 'mx.test', id, recipient: 'user@Example.COM' }) +
          `${STORED_TAIL.replace(/[.+]/g, '\\$&')}$`,
      )
      assert.match(stored, want)
      // The message's log line names the file.
      const line = srv.logs.find((e) => e.message.startsWith(`accepted id=${id} `))?.message ?? ''
      assert.match(
        line,
        / queue=queue\/maildir reply="250 2\.0\.0 Queued as \w+" results=\[([^ ]+ )?queue\/maildir:pass\(delivered to (.+)\)\]$/,
      )
      assert.equal(/delivered to ([^)]+)\)\]$/.exec(line)?.[1], join(dir, 'new', name))
    })
  })

  it('without a pattern: one copy with a Delivered-To per recipient', async () => {
    const dir = join(base, 'shared')
    await withServer({ path: dir }, async (srv) => {
      const id = queuedId((await transaction(srv, ['a@x.test', 'b@y.test'])).raw)
      const stored = (await onlyFile(join(dir, 'new'))).toString('utf8')
      assert.match(
        stored,
        new RegExp(
          '^Return-Path: <sender@example\\.org>\\nDelivered-To: a@x\\.test\\nDelivered-To: b@y\\.test\\n' +
            storedReceived({ helo: 'client.test', me: 'mx.test', id }) +
            `${STORED_TAIL.replace(/[.+]/g, '\\$&')}$`,
        ),
      )
    })
  })

  it('with %d/%l: one copy per recipient, each with its own Delivered-To; the domain is lower-cased', async () => {
    const dir = join(base, 'pattern')
    await withServer({ path: dir, subdir: '%d/%l' }, async (srv) => {
      const id = queuedId((await transaction(srv, ['Ann@X.Test', 'bob@y.test', 'ann@x.test'])).raw)
      assert.deepEqual(await files(dir), ['x.test', 'y.test'])
      assert.deepEqual(await files(join(dir, 'x.test')), ['Ann', 'ann'])
      const tail = storedReceived({ helo: 'client.test', me: 'mx.test', id }) + STORED_TAIL.replace(/[.+]/g, '\\$&')
      for (const [sub, rcpt] of [
        ['x.test/Ann', 'Ann@X.Test'],
        ['y.test/bob', 'bob@y.test'],
        ['x.test/ann', 'ann@x.test'],
      ] as const) {
        const stored = (await onlyFile(join(dir, sub, 'new'))).toString('utf8')
        const want = `^Return-Path: <sender@example\\.org>\\nDelivered-To: ${rcpt.replace(/\./g, '\\.')}\\n${tail}$`
        assert.match(stored, new RegExp(want))
        assert.deepEqual(await files(join(dir, sub, 'tmp')), [])
      }
    })
  })

  it('unsafe local parts stay inside the root, encoded', async () => {
    const outer = join(base, 'unsafe')
    const dir = join(outer, 'root')
    await withServer({ path: dir, subdir: '%u' }, async (srv) => {
      const r = await transaction(srv, ['"../../etc"@x.test', '".hidden"@x.test', '"a/b"@x.test'])
      queuedId(r.raw)
      assert.deepEqual(await files(outer), ['root'])
      assert.deepEqual(await files(dir), ['%2E%2E%2F.%2E%2Fetc@x.test', '%2Ehidden@x.test', 'a%2Fb@x.test'])
      const stored = (await onlyFile(join(dir, '%2E%2E%2F.%2E%2Fetc@x.test', 'new'))).toString('utf8')
      assert.ok(stored.startsWith('Return-Path: <sender@example.org>\nDelivered-To: "../../etc"@x.test\n'))
    })
  })

  it('the mode option sets directory and file permissions', async () => {
    const dir = join(base, 'mode')
    await withServer({ path: dir, subdir: '%l', mode: '750' }, async (srv) => {
      queuedId((await transaction(srv, ['u@x.test'])).raw)
      assert.equal((await stat(join(dir, 'u'))).mode & 0o777, 0o750)
      assert.equal((await stat(join(dir, 'u', 'new'))).mode & 0o777, 0o750)
      const [name] = await files(join(dir, 'u', 'new'))
      assert.equal((await stat(join(dir, 'u', 'new', name as string))).mode & 0o777, 0o640)
    })
  })

  it('bad options stop the start', async () => {
    await assert.rejects(
      startTestServer({ plugins: [maildir({ path: join(base, 'x'), subdir: 'fixed' })] }),
      /%l, %d or %u/,
    )
    await assert.rejects(startTestServer({ plugins: [maildir({ path: join(base, 'x'), subdir: '../%l' })] }), /"\.\."/)
    assert.throws(() => maildir({ path: join(base, 'x'), subdir: '%l', mode: '789' }), /mode/)
  })
})

describe('queue/maildir line endings', () => {
  /** The stored file, and the trace fields in front of the message (CRLF stripped for comparison). */
  const deliverOne = async (dir: string, options: Record<string, string> = {}): Promise<Buffer> => {
    await withServer({ path: dir, ...options }, async (srv) => {
      queuedId((await transaction(srv, ['u@x.test'])).raw)
    })
    return onlyFile(join(dir, 'new'))
  }
  const traceLength = (stored: string): number => stored.indexOf('Subject: hello')

  it('by default every CRLF is stored as LF, and nothing else changes', async () => {
    const stored = await deliverOne(join(base, 'lf'))
    assert.equal(stored.includes(0x0d), false, 'no CR in the file')
    const text = stored.toString('utf8')
    assert.equal(text.slice(traceLength(text)), STORED_TAIL)
    assert.match(text.slice(0, traceLength(text)), /^Return-Path: <sender@example\.org>\nDelivered-To: u@x\.test\n/)
  })

  it('line_endings crlf stores the message as received, CRLF included', async () => {
    const stored = (await deliverOne(join(base, 'crlf'), { line_endings: 'crlf' })).toString('utf8')
    assert.equal(stored.slice(traceLength(stored)), STORED_TAIL.replaceAll('\n', '\r\n'))
    assert.match(stored, /^Return-Path: <sender@example\.org>\r\nDelivered-To: u@x\.test\r\nReceived: [^\n]*\r\n/)
  })

  it('a BINARYMIME message is stored byte for byte: a CRLF in its body is data', async () => {
    const dir = join(base, 'binary')
    // The PNG signature holds a CRLF and a bare LF; changing either corrupts the image.
    const body = Buffer.concat([
      Buffer.from('Subject: png\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x0d, 0x0d, 0x0a]),
    ])
    await withServer({ path: dir }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      await c.send('MAIL FROM:<sender@example.org> BODY=BINARYMIME', 250)
      await c.send('RCPT TO:<u@x.test>', 250)
      c.write(Buffer.concat([Buffer.from(`BDAT ${body.length} LAST\r\n`), body]))
      queuedId((await c.reply(30_000)).raw)
      await c.quit()
    })
    const stored = await onlyFile(join(dir, 'new'))
    assert.deepEqual(stored.subarray(stored.length - body.length), body)
    assert.match(stored.toString('latin1'), /^Return-Path: <sender@example\.org>\r\nDelivered-To: u@x\.test\r\n/)
  })

  it("Dovecot's IMAP server reads the LF file back as the message received, byte for byte", async () => {
    const lf = join(base, 'imap-lf')
    const crlf = join(base, 'imap-crlf')
    await deliverOne(lf)
    await deliverOne(crlf, { line_endings: 'crlf' })
    await chmod(base, 0o755) // Dovecot reads as nobody
    const [fromLf] = await readMaildirOverImap(lf)
    const [fromCrlf] = await readMaildirOverImap(crlf)
    assert.ok(fromLf && fromCrlf)
    const text = fromLf.body.toString('utf8')
    // IMAP carries CRLF: what the client sent (unstuffed), after our trace fields.
    assert.equal(text.slice(traceLength(text)), STORED_TAIL.replaceAll('\n', '\r\n'))
    assert.match(
      text,
      new RegExp(
        `^Return-Path: <sender@example\\.org>\\r\\nDelivered-To: u@x\\.test\\r\\n${receivedPattern({ helo: 'client.test', me: 'mx.test', id: '[0-9a-z]{22}', recipient: 'u@x.test' })}Subject: hello\\r\\n`,
      ),
    )
    assert.equal(fromLf.size, fromLf.body.length)
    // Both storage forms read the same, up to the queue id and date in the Received field.
    const pattern = (b: Buffer) => b.toString('utf8').replace(/id \w+|;[^\r]*/g, '')
    assert.equal(pattern(fromLf.body), pattern(fromCrlf.body))
  })
})

describe('queue/maildir failures', () => {
  it('a broken tmp/ gives 451 and nothing in new/', async () => {
    const dir = join(base, 'broken-tmp')
    await withServer({ path: dir }, async (srv) => {
      await rm(join(dir, 'tmp'), { recursive: true })
      await writeFile(join(dir, 'tmp'), 'not a directory')
      const r = await transaction(srv, ['u@x.test'])
      assert.equal(r.raw, '451 4.3.0 Error: queuing failed; try again later\r\n')
      assert.deepEqual(await files(join(dir, 'new')), [])
    })
  })

  it('a broken new/ gives 451 and the tmp file is removed', async () => {
    const dir = join(base, 'broken-new')
    await withServer({ path: dir }, async (srv) => {
      await rm(join(dir, 'new'), { recursive: true })
      await writeFile(join(dir, 'new'), 'not a directory')
      const r = await transaction(srv, ['u@x.test'])
      assert.equal(r.raw, '451 4.3.0 Error: queuing failed; try again later\r\n')
      assert.deepEqual(await files(join(dir, 'tmp')), [])
    })
  })

  it('one failing recipient defers the whole message: no copy in any new/, no tmp file left', async () => {
    const dir = join(base, 'partial')
    await mkdir(join(dir, 'bad'), { recursive: true })
    await writeFile(join(dir, 'bad', 'tmp'), 'not a directory')
    await withServer({ path: dir, subdir: '%l' }, async (srv) => {
      const r = await transaction(srv, ['good@x.test', 'bad@x.test'])
      assert.equal(r.raw, '451 4.3.0 Error: queuing failed; try again later\r\n')
      assert.deepEqual(await files(join(dir, 'good', 'new')), [])
      assert.deepEqual(await files(join(dir, 'good', 'tmp')), [])
      // The client retries; once the directory is fixed, the message is delivered.
      await rm(join(dir, 'bad', 'tmp'))
      queuedId((await transaction(srv, ['good@x.test', 'bad@x.test'])).raw)
      assert.equal((await files(join(dir, 'good', 'new'))).length, 1)
      assert.equal((await files(join(dir, 'bad', 'new'))).length, 1)
    })
  })
})

/** A raw client that honours backpressure, so the test measures the server and not its own buffers. */
async function sendBig(port: number, bodyBytes: number): Promise<{ reply: string; sha: string }> {
  const socket = connect({ port, host: '127.0.0.1' })
  socket.setEncoding('utf8')
  let buffer = ''
  const waiters: (() => void)[] = []
  socket.on('data', (d: string) => {
    buffer += d
    for (const w of waiters.splice(0)) w()
  })
  const expect = async (re: RegExp): Promise<string> => {
    for (let i = 0; i < 2000; i++) {
      const m = re.exec(buffer)
      if (m) {
        buffer = buffer.slice(m.index + m[0].length)
        return m[0]
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100)
        waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
    throw new Error(`timed out waiting for ${re}; buffer ${JSON.stringify(buffer)}`)
  }
  const write = (data: string | Buffer) =>
    socket.write(data) ? Promise.resolve() : new Promise<void>((r) => socket.once('drain', () => r()))
  await expect(/^220 .*\r\n/m)
  await write('EHLO big.test\r\n')
  await expect(/^250 .*\r\n/m)
  await write('MAIL FROM:<big@example.org>\r\nRCPT TO:<u@x.test>\r\nDATA\r\n')
  await expect(/^354 .*\r\n/m)
  const head = 'Subject: big\r\n\r\n'
  const line = `${'x'.repeat(998)}\r\n`
  const chunk = Buffer.from(line.repeat(64))
  // The hash of what is stored: the same lines with LF ends.
  const hash = createHash('sha256')
  const chunkLf = Buffer.from(line.replace('\r\n', '\n').repeat(64))
  await write(head)
  hash.update(head.replaceAll('\r\n', '\n'))
  let sent = 0
  while (sent + chunk.length <= bodyBytes) {
    await write(chunk)
    hash.update(chunkLf)
    sent += chunk.length
  }
  await write('.\r\n')
  const reply = await expect(/^\d{3} .*\r\n/m)
  socket.end('QUIT\r\n')
  return { reply, sha: hash.digest('hex') }
}

describe('queue/maildir streaming', () => {
  it('a 50 MB message streams to disk with bounded memory', async () => {
    const dir = join(base, 'big')
    await withServer({ path: dir }, async (srv) => {
      globalThis.gc?.()
      const before = process.memoryUsage().rss
      let peak = before
      const timer = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss)
      }, 20)
      let result: { reply: string; sha: string }
      try {
        result = await sendBig(srv.port, 50_000_000)
      } finally {
        clearInterval(timer)
      }
      peak = Math.max(peak, process.memoryUsage().rss)
      assert.match(result.reply, /^250 2\.0\.0 Queued as /)
      const [name] = await files(join(dir, 'new'))
      const stored = await readFile(join(dir, 'new', name as string))
      const end = stored.indexOf('\n\n')
      const received = stored.indexOf('Received: ')
      const subject = stored.indexOf('Subject: big\n')
      assert.ok(received > 0 && subject > received && end > subject)
      const original = stored.subarray(subject)
      assert.equal(createHash('sha256').update(original).digest('hex'), result.sha)
      const growthMb = (peak - before) / 1e6
      console.log(`# 50 MB maildir delivery: rss growth ${growthMb.toFixed(1)} MB`)
      assert.ok(growthMb < 150, `rss grew by ${growthMb.toFixed(1)} MB`)
    })
  })
})
