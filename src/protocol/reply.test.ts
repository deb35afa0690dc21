import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { renderReply, reply } from './reply.ts'

const octets = (s: string) => Buffer.byteLength(s)

describe('renderReply', () => {
  it('renders continuation lines and the enhanced code on each', () => {
    assert.equal(renderReply(reply(550, '5.7.1', ['a', 'b'])), '550-5.7.1 a\r\n550 5.7.1 b\r\n')
  })

  it('puts no CR, LF or other control character on the wire', () => {
    assert.equal(renderReply(reply(250, undefined, 'a\rb\u0000c')), '250 a b c\r\n')
  })

  // RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with the code and CRLF (issue 18 F9).
  const long = [
    { name: 'ASCII', text: 'x'.repeat(600), enhanced: '5.7.1' as const },
    { name: 'two-octet characters', text: 'ü'.repeat(400), enhanced: '5.7.1' as const },
    { name: 'astral characters, no enhanced code', text: `a${'😀'.repeat(200)}`, enhanced: undefined },
  ]
  for (const c of long) {
    it(`cuts a line past 512 octets at a character boundary: ${c.name}`, () => {
      const [first, second] = renderReply(reply(550, c.enhanced, [c.text, c.text])).split('\r\n')
      for (const line of [first ?? '', second ?? '']) {
        assert.ok(octets(`${line}\r\n`) <= 512, `${octets(line)} octets`)
        assert.ok(octets(`${line}\r\n`) > 508, 'no more than a character is lost')
        assert.ok(!line.includes('\ufffd'))
        assert.ok(c.text.startsWith(line.slice(c.enhanced === undefined ? 4 : 10)))
      }
    })
  }

  it('keeps a line of exactly 512 octets', () => {
    const text = 'y'.repeat(512 - '250 2.0.0 \r\n'.length)
    assert.equal(renderReply(reply(250, '2.0.0', text)), `250 2.0.0 ${text}\r\n`)
  })
})
