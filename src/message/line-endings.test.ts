import assert from 'node:assert/strict'
import { Readable, type Transform } from 'node:stream'
import { describe, it } from 'node:test'
import { CrlfNormalizer, crlfToLf } from './line-endings.ts'

async function through(t: Transform, chunks: readonly string[]): Promise<string> {
  const out: Buffer[] = []
  for await (const c of Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(t)) out.push(c as Buffer)
  return Buffer.concat(out).toString('latin1')
}

/** Every way of cutting `s` into two chunks, plus one byte per chunk. */
const splits = (s: string): string[][] => [
  ...Array.from({ length: s.length + 1 }, (_, i) => [s.slice(0, i), s.slice(i)]),
  s.split(''),
]

describe('crlfToLf', () => {
  const cases = [
    { name: 'plain lines', in: 'a\r\nb\r\n', want: 'a\nb\n' },
    { name: 'bare CR and bare LF stay', in: 'a\rb\nc\r\r\n', want: 'a\rb\nc\r\n' },
    { name: 'trailing CR kept', in: 'a\r', want: 'a\r' },
    { name: 'empty', in: '', want: '' },
  ]
  for (const c of cases)
    it(c.name, async () => {
      for (const chunks of splits(c.in)) assert.equal(await through(crlfToLf(), chunks), c.want, JSON.stringify(chunks))
    })
})

describe('CrlfNormalizer', () => {
  const cases = [
    { name: 'CRLF lines stay', in: 'a\r\nb\r\n', want: 'a\r\nb\r\n' },
    { name: 'LF lines (Unix text)', in: 'a\nb\n', want: 'a\r\nb\r\n' },
    { name: 'bare CR', in: 'a\rb', want: 'a\r\nb' },
    { name: 'CR CR LF', in: 'a\r\r\n', want: 'a\r\n\r\n' },
    { name: 'LF CR', in: '\n\r', want: '\r\n\r\n' },
    { name: 'final CR', in: 'a\r', want: 'a\r\n' },
    { name: 'no line ending', in: 'abc', want: 'abc' },
    { name: 'empty', in: '', want: '' },
  ]
  for (const c of cases)
    it(c.name, () => {
      for (const chunks of [...splits(c.in), ['', ...c.in.split(''), '']]) {
        const n = new CrlfNormalizer()
        const out = Buffer.concat([...chunks.map((x) => n.push(Buffer.from(x, 'latin1'))), n.end()])
        assert.equal(out.toString('latin1'), c.want, JSON.stringify(chunks))
      }
    })

  it('returns a clean chunk itself, without a copy', () => {
    const chunk = Buffer.from('line\r\nline\r\n')
    assert.equal(new CrlfNormalizer().push(chunk), chunk)
  })
})
