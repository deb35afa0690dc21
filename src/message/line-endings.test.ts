import assert from 'node:assert/strict'
import { Readable, type Transform } from 'node:stream'
import { describe, it } from 'node:test'
import { crlfToLf } from './line-endings.ts'

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
