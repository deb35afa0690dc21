import assert from 'node:assert/strict'
import { Readable, type Transform } from 'node:stream'
import { describe, it } from 'node:test'
import { dotStuff, runChild } from './child-process.ts'

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

describe('runChild', () => {
  it('reports a program that cannot start', async () => {
    const r = await runChild({ argv: ['/nonexistent/prog'], stdio: 'pipe', timeoutMs: 1000 })
    assert.equal(r.code, undefined)
    assert.match(String(r.spawnError), /ENOENT/)
  })
  it('kills at the timeout', async () => {
    const r = await runChild({ argv: ['/bin/sleep', '5'], stdio: 'pipe', timeoutMs: 100 })
    assert.equal(r.timedOut, true)
    assert.equal(r.signal, 'SIGKILL')
  })
  it('kills on abort', async () => {
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 50)
    const r = await runChild({ argv: ['/bin/sleep', '5'], stdio: 'pipe', timeoutMs: 5000, signal: ac.signal })
    assert.equal(r.signal, 'SIGKILL')
    assert.equal(r.timedOut, false)
  })
  it('caps captured output', async () => {
    const r = await runChild({
      argv: ['/usr/bin/head', '-c', '100000', '/dev/zero'],
      stdio: 'pipe',
      timeoutMs: 5000,
      maxOutput: 10,
    })
    assert.equal(r.code, 0)
    assert.equal(r.stdout.length, 10)
  })
})
