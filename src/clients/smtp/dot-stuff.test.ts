import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DotStuffer, dotStuff } from './dot-stuff.ts'

const cases = [
  { name: 'empty content', input: '', want: '.\r\n' },
  { name: 'one line with CRLF', input: 'a\r\n', want: 'a\r\n.\r\n' },
  { name: 'no final CRLF', input: 'a', want: 'a\r\n.\r\n' },
  { name: 'leading dot', input: '.a\r\n', want: '..a\r\n.\r\n' },
  { name: 'dot after CRLF', input: 'a\r\n.\r\nb\r\n', want: 'a\r\n..\r\nb\r\n.\r\n' },
  {
    name: 'bare LF becomes CRLF, then stuffed',
    input: 'a\n.\nMAIL FROM:<x>\r\n',
    want: 'a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n',
  },
  { name: 'bare CR becomes CRLF, then stuffed', input: 'a\r.\rb', want: 'a\r\n..\r\nb\r\n.\r\n' },
  { name: '\\n.\\r\\n smuggling', input: 'a\n.\r\nRSET\r\n', want: 'a\r\n..\r\nRSET\r\n.\r\n' },
  { name: '\\r\\n.\\r\\r\\n', input: 'a\r\n.\r\r\nb', want: 'a\r\n..\r\n\r\nb\r\n.\r\n' },
  { name: 'trailing CR', input: 'a\r', want: 'a\r\n.\r\n' },
] as const

describe('DotStuffer', () => {
  for (const c of cases) {
    it(c.name, () => assert.equal(dotStuff(Buffer.from(c.input, 'latin1')).toString('latin1'), c.want))
  }

  it('gives the same bytes whatever the chunk boundaries', () => {
    const input = Buffer.from('x\r\n.a\n.\r.\r\n..\r\nend\r', 'latin1')
    const whole = dotStuff(input).toString('latin1')
    for (let cut = 0; cut <= input.length; cut++) {
      const s = new DotStuffer()
      const out = Buffer.concat([s.push(input.subarray(0, cut)), s.push(input.subarray(cut)), s.end()])
      assert.equal(out.toString('latin1'), whole, `cut at ${cut}`)
    }
  })

  it('never emits a bare CR or LF', () => {
    const bytes = Buffer.from(
      Array.from({ length: 4000 }, (_, i) => [0x0d, 0x0a, 0x2e, 0x41][(i * 7919) % 4] as number),
    )
    const out = dotStuff(bytes).toString('latin1')
    assert.equal(out.replace(/\r\n/g, '').search(/[\r\n]/), -1)
    assert.ok(!/\r\n\.[^.\r]/.test(out), 'every line-start dot is doubled')
  })
})
