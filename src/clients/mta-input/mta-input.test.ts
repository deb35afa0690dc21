import assert from 'node:assert/strict'
import { Readable, type Transform } from 'node:stream'
import { describe, it } from 'node:test'
import { dotStuff } from './mta-input.ts'

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

describe('dotStuff', () => {
  const cases = [
    { name: 'leading dots doubled', in: '.a\r\nb.\r\n..c\r\n', want: '..a\r\nb.\r\n...c\r\n.\r\n' },
    { name: 'missing final CRLF added', in: 'a\r\n.b', want: 'a\r\n..b\r\n.\r\n' },
    { name: 'a lone dot line', in: 'a\r\n.\r\nb\r\n', want: 'a\r\n..\r\nb\r\n.\r\n' },
    { name: 'empty message', in: '', want: '.\r\n' },
  ]
  for (const c of cases)
    it(c.name, async () => {
      for (const chunks of splits(c.in)) assert.equal(await through(dotStuff(), chunks), c.want, JSON.stringify(chunks))
    })
})
