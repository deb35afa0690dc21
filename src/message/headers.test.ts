import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { foldHeader, HeaderBlock } from './headers.ts'
import { samples } from './test-fixtures.ts'

describe('HeaderBlock.parse', () => {
  for (const s of samples) {
    it(s.name, () => {
      const { headers, body, hasSeparator } = HeaderBlock.parse(s.message)
      assert.deepEqual(
        headers.fields.map((f) => f.name),
        s.names,
      )
      assert.deepEqual(body, s.body)
      assert.equal(hasSeparator, s.hasSeparator)
      const sep = hasSeparator ? Buffer.from('\r\n') : Buffer.alloc(0)
      assert.deepEqual(Buffer.concat([headers.toBuffer(), sep, body]), s.message, 'byte-exact')
      assert.equal(headers.byteLength, headers.toBuffer().length)
      assert.equal(headers.edited, false)
    })
  }
})

describe('HeaderBlock reading', () => {
  const msg = Buffer.concat([
    Buffer.from('Received: from a\r\n\tby b; Mon, 1 Jan 2001 00:00:00 +0000\r\n'),
    Buffer.from('received: from c by d; x\r\n'),
    Buffer.from('Subject:   Grüße\r\n  folded  \r\n\twith tab\r\n', 'utf8'),
    Buffer.from('X-Empty:\r\n\r\n'),
  ])
  const { headers } = HeaderBlock.parse(msg)

  const cases = [
    { name: 'received', get: ['from a\tby b; Mon, 1 Jan 2001 00:00:00 +0000', 'from c by d; x'] },
    { name: 'RECEIVED', get: ['from a\tby b; Mon, 1 Jan 2001 00:00:00 +0000', 'from c by d; x'] },
    { name: 'subject', get: ['Grüße  folded  \twith tab'] },
    { name: 'x-empty', get: [''] },
    { name: 'missing', get: [] },
  ] as const
  for (const c of cases) {
    it(`get(${c.name})`, () => {
      assert.deepEqual(headers.get(c.name), c.get)
      assert.equal(headers.count(c.name), c.get.length)
      assert.equal(headers.first(c.name), c.get[0])
    })
  }
})

describe('HeaderBlock editing', () => {
  const original = 'Authentication-Results: mx.evil; spf=pass\r\nSubject: s\r\nX-Spam: yes\r\nx-spam: YES\r\n'

  it('add, prepend, remove, rename', () => {
    const { headers } = HeaderBlock.parse(Buffer.from(`${original}\r\nbody\r\n`))
    headers.prepend('Received', 'from x\r\n\tby y; date')
    headers.add('X-Result', 'ok')
    assert.equal(headers.remove('X-SPAM'), 2)
    assert.equal(headers.rename('authentication-results', 'Original-Authentication-Results'), 1)
    assert.equal(headers.edited, true)
    assert.equal(
      headers.toBuffer().toString(),
      'Received: from x\r\n\tby y; date\r\n' +
        'Original-Authentication-Results: mx.evil; spf=pass\r\n' +
        'Subject: s\r\n' +
        'X-Result: ok\r\n',
    )
    assert.deepEqual(headers.get('original-authentication-results'), ['mx.evil; spf=pass'])
    assert.equal(headers.fields[1]?.name, 'Original-Authentication-Results')
  })

  // The milter edits (SMFIR_INSHEADER, SMFIR_CHGHEADER, delete by index) on one section.
  const section = 'Received: r1\r\nSubject: s\r\nX-Tag: one\r\nx-tag: two\r\nX-TAG: three\r\n'
  const positional = [
    {
      label: 'insert at the top',
      edit: (h: HeaderBlock) => h.insert(0, 'X-New', 'n'),
      want: ['X-New: n', 'Received: r1', 'Subject: s', 'X-Tag: one', 'x-tag: two', 'X-TAG: three'],
    },
    {
      label: 'insert below the first field',
      edit: (h: HeaderBlock) => h.insert(1, 'X-New', 'n'),
      want: ['Received: r1', 'X-New: n', 'Subject: s', 'X-Tag: one', 'x-tag: two', 'X-TAG: three'],
    },
    {
      label: 'insert past the end appends',
      edit: (h: HeaderBlock) => h.insert(99, 'X-New', 'n'),
      want: ['Received: r1', 'Subject: s', 'X-Tag: one', 'x-tag: two', 'X-TAG: three', 'X-New: n'],
    },
    {
      label: 'change the second X-Tag in place, keeping its name',
      edit: (h: HeaderBlock) => assert.equal(h.change('X-Tag', 1, '2'), true),
      want: ['Received: r1', 'Subject: s', 'X-Tag: one', 'x-tag: 2', 'X-TAG: three'],
    },
    {
      label: 'remove only the third X-Tag',
      edit: (h: HeaderBlock) => assert.equal(h.remove('x-tag', 2), 1),
      want: ['Received: r1', 'Subject: s', 'X-Tag: one', 'x-tag: two'],
    },
    {
      label: 'remove every X-Tag',
      edit: (h: HeaderBlock) => assert.equal(h.remove('x-tag'), 3),
      want: ['Received: r1', 'Subject: s'],
    },
  ]
  for (const c of positional) {
    it(c.label, () => {
      const { headers } = HeaderBlock.parse(Buffer.from(section))
      c.edit(headers)
      assert.equal(headers.toBuffer().toString(), c.want.map((l) => `${l}\r\n`).join(''))
      assert.equal(headers.edited, true)
    })
  }

  it('change and remove of a missing occurrence change nothing', () => {
    const { headers } = HeaderBlock.parse(Buffer.from(section))
    assert.equal(headers.change('X-Tag', 3, 'four'), false)
    assert.equal(headers.change('Missing', 0, 'x'), false)
    assert.equal(headers.remove('X-Tag', 3), 0)
    assert.equal(headers.edited, false)
    assert.equal(headers.toBuffer().toString(), section)
  })

  it('refuses negative or fractional positions and indexes', () => {
    const { headers } = HeaderBlock.parse(Buffer.from(section))
    assert.throws(() => headers.insert(-1, 'X', 'v'), RangeError)
    assert.throws(() => headers.insert(0.5, 'X', 'v'), RangeError)
    assert.throws(() => headers.change('X-Tag', -1, 'v'), RangeError)
    assert.throws(() => headers.remove('X-Tag', 1.5), RangeError)
    assert.equal(headers.edited, false)
  })

  it('no-op remove/rename leaves the block unedited', () => {
    const { headers } = HeaderBlock.parse(Buffer.from(original))
    assert.equal(headers.remove('nope'), 0)
    assert.equal(headers.rename('nope', 'Other'), 0)
    assert.equal(headers.edited, false)
  })

  it('rename keeps the value bytes (8-bit, folding) untouched', () => {
    const raw = Buffer.concat([Buffer.from('A-R: x;\r\n\tdkim=pass caf'), Buffer.from([0xe9, 0x0d, 0x0a])])
    const { headers } = HeaderBlock.parse(raw)
    headers.rename('a-r', 'X-Old-A-R')
    assert.deepEqual(headers.toBuffer(), Buffer.concat([Buffer.from('X-Old-A-R'), raw.subarray(3)]))
  })

  const injections = [
    { label: 'name with space', name: 'X Bad', value: 'v' },
    { label: 'name with colon', name: 'X-Bad:', value: 'v' },
    { label: 'name with CR', name: 'X-Bad\r', value: 'v' },
    { label: 'empty name', name: '', value: 'v' },
    { label: 'non-ASCII name', name: 'X-Ünï', value: 'v' },
    { label: 'bare LF in value', name: 'X-A', value: 'v\nBcc: victim@example.com' },
    { label: 'bare CR in value', name: 'X-A', value: 'v\rBcc: x' },
    { label: 'CRLF not followed by WSP', name: 'X-A', value: 'v\r\nBcc: x' },
    { label: 'CRLF CRLF ends headers', name: 'X-A', value: 'v\r\n\r\nbody' },
    { label: 'trailing CRLF', name: 'X-A', value: 'v\r\n' },
    { label: 'whitespace-only continuation', name: 'X-A', value: 'v\r\n \r\n x' },
    { label: 'NUL in value', name: 'X-A', value: 'v\0' },
  ] as const
  for (const c of injections) {
    it(`refuses ${c.label}`, () => {
      const h = new HeaderBlock()
      assert.throws(() => h.add(c.name, c.value), TypeError)
      assert.throws(() => h.prepend(c.name, c.value), TypeError)
      assert.throws(() => h.insert(0, c.name, c.value), TypeError)
      assert.equal(h.fields.length, 0)
      const { headers } = HeaderBlock.parse(Buffer.from('X-A: old\r\n'))
      if (c.name === 'X-A') assert.throws(() => headers.change('X-A', 0, c.value), TypeError)
      assert.equal(headers.toBuffer().toString(), 'X-A: old\r\n')
    })
  }

  it('refuses an invalid rename target', () => {
    const { headers } = HeaderBlock.parse(Buffer.from(original))
    assert.throws(() => headers.rename('subject', 'Bad Name'), TypeError)
  })

  it('accepts UTF-8 values (RFC 6532) and proper folding', () => {
    const h = new HeaderBlock()
    h.add('X-Note', 'Grüße\r\n\tcontinued')
    assert.deepEqual(h.get('x-note'), ['Grüße\tcontinued'])
    assert.deepEqual(h.toBuffer(), Buffer.from('X-Note: Grüße\r\n\tcontinued\r\n', 'utf8'))
  })
})

describe('foldHeader', () => {
  const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ')
  const cases = [
    { label: 'short', name: 'Subject', value: 'hi', want: 'Subject: hi\r\n' },
    { label: 'empty', name: 'X-E', value: '', want: 'X-E: \r\n' },
    { label: 'unbreakable', name: 'X-Id', value: 'x'.repeat(120), want: `X-Id: ${'x'.repeat(120)}\r\n` },
  ] as const
  for (const c of cases) {
    it(c.label, () => assert.equal(foldHeader(c.name, c.value), c.want))
  }

  it('folds a long value at whitespace within 78 characters, and unfolds back', () => {
    const text = foldHeader('Subject', long)
    const lines = text.slice(0, -2).split('\r\n')
    assert.ok(lines.length > 3)
    for (const l of lines) assert.ok(l.length <= 78, l)
    for (const l of lines.slice(1)) assert.match(l, /^ \S/)
    const h = new HeaderBlock()
    h.add('Subject', long) // add() folds too
    assert.equal(h.toBuffer().toString(), text)
    assert.deepEqual(h.get('subject'), [long])
  })

  it('never folds before whitespace-only pieces (no blank continuation lines)', () => {
    const v = `${'a'.repeat(70)}${' '.repeat(20)}b`
    const text = foldHeader('X', v)
    for (const l of text.split('\r\n').slice(1, -1)) assert.match(l, /\S/)
    const h = new HeaderBlock()
    h.add('X', v)
    assert.deepEqual(h.get('x'), [v])
  })
})
