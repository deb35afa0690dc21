import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { defaultScan, drive, fuzzCodec, type Rec, splitAt } from '../../test/fuzz/codec.fuzz.ts'
import { type MessageScanOptions, SmtpCodec } from './codec.ts'

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1')
const cmd = (line: string): Rec => ({ kind: 'cmd', line })
const err = (error: string): Rec => ({ kind: 'err', error })
const scanWith = (o: Partial<MessageScanOptions>): MessageScanOptions => ({ ...defaultScan, ...o })

/** Every way to feed `input`: whole, byte by byte, in two pieces at every offset, in three at a spread. */
function feedings(input: Buffer): Buffer[][] {
  const out: Buffer[][] = [[input], Array.from(input, (_, i) => input.subarray(i, i + 1))]
  for (let i = 1; i < input.length; i++) out.push(splitAt(input, [i]))
  const step = Math.max(1, Math.floor(input.length / 25))
  for (let i = 1; i < input.length; i += step) {
    for (let j = i + 1; j < input.length; j += step) out.push(splitAt(input, [i, j]))
  }
  return out
}

/** Drives `input` every way and asserts they all agree; returns the common records. */
function run(input: string | Buffer, scan = defaultScan, limit = 512): Rec[] {
  const buf = typeof input === 'string' ? bytes(input) : input
  const want = drive(new SmtpCodec({ maxCommandLine: limit }), [buf], scan)
  for (const pieces of feedings(buf)) {
    const got = drive(new SmtpCodec({ maxCommandLine: limit }), pieces, scan)
    assert.deepEqual(got, want, `split into ${pieces.map((p) => p.length).join('+')}`)
  }
  return want
}

/** The single message of a transcript: asserts there is exactly one and it ended. */
function onlyMessage(recs: readonly Rec[]): Extract<Rec, { kind: 'end' }> {
  const ends = recs.filter((r) => r.kind === 'end' || r.kind === 'partial')
  assert.equal(ends.length, 1, `messages: ${JSON.stringify(ends)}`)
  const [end] = ends
  assert.ok(end?.kind === 'end')
  return end
}

describe('SmtpCodec command mode', () => {
  const cases = [
    { name: 'one command', input: 'EHLO a.test\r\n', want: [cmd('EHLO a.test')] },
    {
      name: 'pipelined',
      input: 'MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nNOOP\r\n',
      want: ['MAIL FROM:<a@b>', 'RCPT TO:<c@d>', 'NOOP'].map(cmd),
    },
    { name: 'empty line', input: '\r\n', want: [cmd('')] },
    { name: 'incomplete line waits', input: 'EHLO a', want: [] },
    {
      name: 'bare LF: the rest up to CRLF is not a command',
      input: 'EHLO a\nNOOP\r\nQUIT\r\n',
      want: [err('bare-lf'), cmd('QUIT')],
    },
    { name: 'bare LF alone', input: '\nNOOP\r\nQUIT\r\n', want: [err('bare-lf'), cmd('QUIT')] },
    // Issue 18 F4: every bare LF is reported, also those in the rest of a refused line, so a client
    // that ends its lines with LF hears about each line (the session then closes) and no such line
    // is ever a command.
    {
      name: 'bare LF after bare LF: each reported, none a command',
      input: 'EHLO x\nMAIL FROM:<a@b>\nQUIT\nNOOP\r\nRSET\r\n',
      want: [err('bare-lf'), err('bare-lf'), err('bare-lf'), cmd('RSET')],
    },
    {
      name: 'CR then bare LF in the discarded rest',
      input: 'EHLO x\na\rb\nc\r\nQUIT\r\n',
      want: [err('bare-lf'), err('bare-lf'), cmd('QUIT')],
    },
    { name: 'bare CR mid-line', input: 'EHLO a\rb\r\nNOOP\r\n', want: [err('bare-cr'), cmd('NOOP')] },
    { name: 'CR CR LF', input: 'EHLO a\r\r\n', want: [err('bare-cr')] },
    { name: 'trailing bare CR waits for its LF', input: 'EHLO a\r', want: [] },
    { name: 'NUL', input: 'EHLO a\x00b\r\nNOOP\r\n', want: [err('nul'), cmd('NOOP')] },
    { name: 'bare LF wins over CR and NUL', input: 'a\r\x00b\n', want: [err('bare-lf')] },
    { name: '512 bytes incl. CRLF fits', input: `${'a'.repeat(510)}\r\n`, want: [cmd('a'.repeat(510))] },
    {
      name: '513 bytes is too long, once',
      input: `${'a'.repeat(511)}\r\nNOOP\r\n`,
      want: [err('too-long'), cmd('NOOP')],
    },
    { name: 'EHLO + 1100 a', input: `EHLO ${'a'.repeat(1100)}\r\nQUIT\r\n`, want: [err('too-long'), cmd('QUIT')] },
    {
      name: 'too long: a bare LF does not end the line, the next CRLF does',
      input: `${'a'.repeat(600)}\nQUIT\r\nNOOP\r\n`,
      want: [err('too-long'), err('bare-lf'), cmd('NOOP')],
    },
    {
      name: 'too long without LF, then bare LFs',
      input: `${'a'.repeat(600)}b\nMAIL\nNOOP\r\nQUIT\r\n`,
      want: [err('too-long'), err('bare-lf'), err('bare-lf'), cmd('QUIT')],
    },
    {
      name: 'too long ending in CRLF: nothing more',
      input: `${'a'.repeat(600)}\r\nNOOP\r\n`,
      want: [err('too-long'), cmd('NOOP')],
    },
  ]
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(run(c.input), c.want))
  }

  it('10 MiB without LF keeps memory bounded and reports too-long once', () => {
    const codec = new SmtpCodec()
    const piece = Buffer.alloc(64 * 1024, 'A')
    const events: string[] = []
    for (let sent = 0; sent < 10 * 1024 * 1024; sent += piece.length) {
      codec.push(piece)
      for (let ev = codec.next(); ev !== undefined; ev = codec.next()) events.push(JSON.stringify(ev))
      assert.ok(codec.buffered() < 512, `buffered ${codec.buffered()}`)
    }
    codec.push(bytes('\r\nQUIT\r\n'))
    for (let ev = codec.next(); ev !== undefined; ev = codec.next()) events.push(JSON.stringify(ev))
    assert.deepEqual(events, [
      JSON.stringify({ type: 'command-error', error: 'too-long' }),
      JSON.stringify({ type: 'command', line: bytes('QUIT') }),
    ])
  })

  it('10 MiB without LF in one push is dropped by the next() that reports it', () => {
    const codec = new SmtpCodec()
    codec.push(Buffer.alloc(10 * 1024 * 1024, 'A'))
    assert.deepEqual(codec.next(), { type: 'command-error', error: 'too-long' })
    assert.equal(codec.buffered(), 0)
    assert.equal(codec.next(), undefined)
  })

  it('setCommandLimit raises the limit for an AUTH response', () => {
    const codec = new SmtpCodec()
    const line = 'x'.repeat(5000)
    codec.setCommandLimit(12 * 1024)
    codec.push(bytes(`${line}\r\n`))
    assert.deepEqual(codec.next(), { type: 'command', line: bytes(line) })
    codec.setCommandLimit(512)
    codec.push(bytes(`${line}\r\n`))
    assert.deepEqual(codec.next(), { type: 'command-error', error: 'too-long' })
  })

  it('discardBuffered drops commands injected before the TLS handshake', () => {
    const codec = new SmtpCodec()
    codec.push(bytes('STARTTLS\r\nMAIL FROM:<evil@x.test>\r\n'))
    assert.deepEqual(codec.next(), { type: 'command', line: bytes('STARTTLS') })
    assert.ok(codec.buffered() > 0)
    codec.discardBuffered()
    assert.equal(codec.buffered(), 0)
    assert.equal(codec.next(), undefined)
    codec.push(bytes('EHLO a.test\r\n'))
    assert.deepEqual(codec.next(), { type: 'command', line: bytes('EHLO a.test') })
  })

  it('bytes after DATA stay unparsed until startData(), and are commands if DATA was refused', () => {
    const codec = new SmtpCodec()
    codec.push(bytes('DATA\r\nhello\r\n.\r\n'))
    assert.deepEqual(codec.next(), { type: 'command', line: bytes('DATA') })
    assert.equal(codec.buffered(), 10)
    assert.equal(codec.inContent(), false)
    assert.deepEqual(codec.next(), { type: 'command', line: bytes('hello') })
    assert.deepEqual(codec.next(), { type: 'command', line: bytes('.') })
    assert.equal(codec.next(), undefined)
  })
})

describe('SmtpCodec DATA mode', () => {
  const cases = [
    {
      name: 'plain message',
      input: 'DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n',
      content: 'Subject: x\r\n\r\nbody\r\n',
    },
    { name: 'empty message', input: 'DATA\r\n.\r\nQUIT\r\n', content: '' },
    { name: 'one empty line', input: 'DATA\r\n\r\n.\r\nQUIT\r\n', content: '\r\n' },
    { name: 'unstuffing at data start', input: 'DATA\r\n..x\r\n.\r\nQUIT\r\n', content: '.x\r\n' },
    { name: 'unstuffing mid-message', input: 'DATA\r\na\r\n...\r\n. \r\n.\r\nQUIT\r\n', content: 'a\r\n..\r\n \r\n' },
    { name: 'only the first dot', input: 'DATA\r\n..\r\n.\r\nQUIT\r\n', content: '.\r\n' },
    { name: 'dot inside a line stays', input: 'DATA\r\na.b\r\n.\r\nQUIT\r\n', content: 'a.b\r\n' },
    { name: 'NUL in content is kept', input: 'DATA\r\na\x00b\r\n.\r\nQUIT\r\n', content: 'a\x00b\r\n' },
  ]
  for (const c of cases) {
    it(c.name, () => {
      const recs = run(c.input)
      assert.equal(onlyMessage(recs).content, c.content)
      assert.deepEqual(recs.at(-1), cmd('QUIT'))
      assert.equal(onlyMessage(recs).result.size, c.content.length)
    })
  }

  it('pipelined commands after data-end are parsed as commands', () => {
    const recs = run('DATA\r\nx\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\ny\r\n.\r\nQUIT\r\n')
    assert.deepEqual(
      recs.map((r) => (r.kind === 'end' ? r.content : r)),
      [cmd('DATA'), 'x\r\n', cmd('MAIL FROM:<a@b>'), cmd('RCPT TO:<c@d>'), cmd('DATA'), 'y\r\n', cmd('QUIT')],
    )
  })

  it('data chunks are slices of the pushed buffer', () => {
    const codec = new SmtpCodec()
    const input = bytes('line one\r\nline two\r\n.\r\n')
    codec.beginMessage(defaultScan)
    codec.startData()
    codec.push(input)
    const ev = codec.next()
    assert.ok(ev?.type === 'data')
    assert.equal(ev.chunk.buffer, input.buffer)
    assert.equal(ev.chunk.toString(), 'line one\r\nline two\r\n')
    assert.equal(codec.next()?.type, 'data-end')
    assert.equal(codec.inContent(), false)
  })

  it('the same buffer object pushed twice is scanned twice', () => {
    const codec = new SmtpCodec()
    const piece = bytes('a\nb\r\n')
    codec.beginMessage(defaultScan)
    codec.startData()
    codec.push(piece)
    codec.push(piece)
    codec.push(bytes('.\r\n'))
    const events = [codec.next(), codec.next(), codec.next()]
    assert.deepEqual(events.at(-1), {
      type: 'data-end',
      result: { size: 10, overSize: false, bareLf: 2, bareCr: 0, longLine: false },
    })
  })

  it('oversize: counts to the real end, emits only up to the limit, then reads commands', () => {
    const body = `${'0123456789'.repeat(3)}\r\n\r\n.\r\n`
    const recs = run(`DATA\r\n${body}QUIT\r\n`, scanWith({ maxMessageSize: 10 }))
    const msg = onlyMessage(recs)
    assert.equal(msg.content, '0123456789')
    assert.deepEqual(msg.result, { size: 34, overSize: true, bareLf: 0, bareCr: 0, longLine: false })
    assert.deepEqual(recs.at(-1), cmd('QUIT'))
  })

  it('exactly at the limit is not oversize', () => {
    const msg = onlyMessage(run('DATA\r\n12345678\r\n.\r\n', scanWith({ maxMessageSize: 10 })))
    assert.equal(msg.result.overSize, false)
    assert.equal(msg.content, '12345678\r\n')
  })

  const longLines = [
    { name: 'at the limit', body: '12345\r\n', longLine: false },
    { name: 'one over', body: '123456\r\n', longLine: true },
    { name: 'unstuffed dot not counted', body: '.12345\r\n', longLine: false },
    { name: 'bare LF ends a line', body: '123\n45\r\n', longLine: false },
    { name: 'long last line', body: 'a\r\n1234567\r\n', longLine: true },
  ]
  for (const c of longLines) {
    it(`long line: ${c.name}`, () => {
      const msg = onlyMessage(run(`DATA\r\n${c.body}.\r\n`, scanWith({ maxLineLength: 5 })))
      assert.equal(msg.result.longLine, c.longLine)
    })
  }
})

describe('SmtpCodec SMTP smuggling (security.md §1.1)', () => {
  const head = 'Subject: t\r\n\r\nbody'
  const tail = 'MAIL FROM:<spoof@victim.test>\r\nRCPT TO:<u@local.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n'
  // kept: the content under 'reject' (as received, unstuffed only after a real CRLF); normalized: under
  // 'normalize'; lf/cr: bare counts.
  const variants = [
    { x: '\n.\n', kept: '\n.\n', normalized: '\r\n.\r\n', lf: 2, cr: 0 },
    { x: '\r.\r', kept: '\r.\r', normalized: '\r\n.\r\n', lf: 0, cr: 2 },
    { x: '\r.\n', kept: '\r.\n', normalized: '\r\n.\r\n', lf: 1, cr: 1 },
    { x: '\n.\r', kept: '\n.\r', normalized: '\r\n.\r\n', lf: 1, cr: 1 },
    { x: '\n.\r\n', kept: '\n.\r\n', normalized: '\r\n.\r\n', lf: 1, cr: 0 },
    { x: '\r\n.\n', kept: '\r\n\n', normalized: '\r\n\r\n', lf: 1, cr: 0 },
    { x: '\r.\r\n', kept: '\r.\r\n', normalized: '\r\n.\r\n', lf: 0, cr: 1 },
    { x: '\r\n.\r', kept: '\r\n\r', normalized: '\r\n\r\n', lf: 0, cr: 1 },
    { x: '\r\n\x00.\r\n', kept: '\r\n\x00.\r\n', normalized: '\r\n\x00.\r\n', lf: 0, cr: 0 },
    { x: '\r\n.\x00\r\n', kept: '\r\n\x00\r\n', normalized: '\r\n\x00\r\n', lf: 0, cr: 0 },
    { x: '\r\n.\r\r\n', kept: '\r\n\r\r\n', normalized: '\r\n\r\n\r\n', lf: 0, cr: 1 },
    { x: '\r\r\n.\r\r\n', kept: '\r\r\n\r\r\n', normalized: '\r\n\r\n\r\n\r\n', lf: 0, cr: 2 },
  ]
  for (const v of variants) {
    for (const policy of ['reject', 'normalize'] as const) {
      it(`${JSON.stringify(v.x)} does not end DATA (${policy})`, () => {
        const recs = run(`DATA\r\n${head}${v.x}${tail}.\r\nQUIT\r\n`, scanWith({ bareLineEndings: policy }))
        assert.deepEqual(recs[0], cmd('DATA'))
        const msg = onlyMessage(recs)
        assert.equal(msg.content, `${head}${policy === 'reject' ? v.kept : v.normalized}${tail}`)
        assert.equal(msg.result.bareLf, v.lf)
        assert.equal(msg.result.bareCr, v.cr)
        assert.deepEqual(recs.slice(2), [cmd('QUIT')])
      })
    }
  }

  it('the smuggled text is content even when the real end never comes', () => {
    const recs = run(`DATA\r\n${head}\n.\n${tail}`)
    assert.deepEqual(recs, [cmd('DATA'), { kind: 'partial', content: `${head}\n.\n${tail}` }])
  })
})

describe('SmtpCodec BDAT mode', () => {
  it('exact sizes, BDAT 0, and CRLF.CRLF as literal data', () => {
    const recs = run('BDAT 7\r\n\r\n.\r\nxxBDAT 0 LAST\r\nQUIT\r\n')
    assert.deepEqual(
      recs.map((r) => (r.kind === 'end' ? [r.content, r.result.size] : r)),
      [cmd('BDAT 7'), ['\r\n.\r\nxx', 7], cmd('BDAT 0 LAST'), ['', 7], cmd('QUIT')],
    )
  })

  it('startBdat(0) yields data-end at once', () => {
    const codec = new SmtpCodec()
    codec.beginMessage(defaultScan)
    codec.startBdat(0)
    assert.equal(codec.inContent(), true)
    assert.deepEqual(codec.next(), {
      type: 'data-end',
      result: { size: 0, overSize: false, bareLf: 0, bareCr: 0, longLine: false },
    })
    assert.equal(codec.inContent(), false)
  })

  it('no dot-unstuffing, no end-of-data scan', () => {
    const msg = onlyMessage(run('BDAT 7 LAST\r\n..\r\n.\r\n'))
    assert.equal(msg.content, '..\r\n.\r\n')
  })

  const crossings = [
    {
      name: 'CR then LF in the next chunk is a CRLF',
      input: 'BDAT 3\r\nab\rBDAT 3 LAST\r\n\ncd',
      cr: 0,
      content: 'ab\r\ncd',
    },
    {
      name: 'CR then other in the next chunk is bare',
      input: 'BDAT 3\r\nab\rBDAT 3 LAST\r\nxcd',
      cr: 1,
      content: 'ab\r\nxcd',
    },
    { name: 'CR at the end of the LAST chunk is bare', input: 'BDAT 3 LAST\r\nab\r', cr: 1, content: 'ab\r\n' },
    { name: 'CR before BDAT 0 LAST is bare', input: 'BDAT 3\r\nab\rBDAT 0 LAST\r\n', cr: 1, content: 'ab\r\n' },
  ]
  for (const c of crossings) {
    it(`bare CR across chunks: ${c.name}`, () => {
      const recs = run(c.input, scanWith({ bareLineEndings: 'normalize' }))
      const ends = recs.filter((r) => r.kind === 'end')
      assert.equal(ends.map((r) => r.content).join(''), c.content)
      assert.equal(ends.at(-1)?.result.bareCr, c.cr)
    })
  }

  it('reject policy keeps bare endings but counts them', () => {
    const msg = onlyMessage(run('BDAT 6 LAST\r\na\nb\rc\r\n', scanWith({ bareLineEndings: 'reject' })))
    assert.equal(msg.content, 'a\nb\rc\r')
    assert.equal(msg.result.bareLf, 1)
    assert.equal(msg.result.bareCr, 2)
  })

  it('binary: no line checks at all', () => {
    const msg = onlyMessage(
      run('BDAT 6 LAST\r\n\n\r.\x00\r\r', scanWith({ binary: true, bareLineEndings: 'normalize', maxLineLength: 1 })),
    )
    assert.equal(msg.content, '\n\r.\x00\r\r')
    assert.deepEqual(msg.result, { size: 6, overSize: false, bareLf: 0, bareCr: 0, longLine: false })
  })

  it('oversize sums chunks', () => {
    const recs = run('BDAT 6\r\nabcdefBDAT 6 LAST\r\nghijklQUIT\r\n', scanWith({ maxMessageSize: 8 }))
    const ends = recs.filter((r) => r.kind === 'end')
    assert.equal(ends.map((r) => r.content).join(''), 'abcdefgh')
    assert.deepEqual(ends.at(-1)?.result, { size: 12, overSize: true, bareLf: 0, bareCr: 0, longLine: false })
    assert.deepEqual(recs.at(-1), cmd('QUIT'))
  })

  it('a huge BDAT size allocates nothing', () => {
    const codec = new SmtpCodec()
    codec.beginMessage(defaultScan)
    codec.startBdat(99_999_999_999)
    codec.push(bytes('abc'))
    assert.equal(codec.next()?.type, 'data')
    assert.equal(codec.next(), undefined)
    assert.throws(() => codec.startBdat(-1), RangeError)
  })
})

describe('SmtpCodec fuzz', () => {
  it('random input: chunking-independent, matches the reference framer', async () => {
    const { iterations } = await fuzzCodec(1.5)
    assert.ok(iterations > 100)
  })
})
