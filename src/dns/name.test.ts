import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeQueryName, sameName } from './name.ts'

describe('dns/name: query names on the wire', () => {
  const sent = [
    { name: 'a host name', in: 'mx.example.com', text: 'mx.example.com' },
    { name: 'a trailing dot is the same name', in: 'mx.example.com.', text: 'mx.example.com' },
    { name: 'ASCII letters are folded to lowercase', in: 'MX.Example.COM', text: 'mx.example.com' },
    { name: 'a colon (SPF test suite, a-colon-domain)', in: 'a:b.example', text: 'a:b.example' },
    { name: 'underscores and plus signs', in: '_dmarc.x+y.example', text: '_dmarc.x+y.example' },
    { name: 'a space inside a label', in: 'has space.example', text: 'has space.example' },
    { name: 'an IDN label becomes an A-label', in: 'bücher.example', text: 'xn--bcher-kva.example' },
    { name: 'a 63-octet label', in: `${'a'.repeat(63)}.example`, text: `${'a'.repeat(63)}.example` },
    { name: 'the root', in: '.', text: '.' },
  ] as const
  for (const c of sent) it(`sends ${c.name}`, () => assert.equal(encodeQueryName(c.in)?.text, c.text))

  const impossible = [
    { name: 'an empty label', in: 'a..example' },
    { name: 'a leading dot', in: '.example' },
    { name: 'a 64-octet label', in: `${'a'.repeat(64)}.example` },
    { name: 'a name over 255 octets', in: Array(5).fill('a'.repeat(63)).join('.') },
    { name: 'a label over 63 octets only once UTF-8 encoded', in: `${'é'.repeat(32)}\u0000.example` },
  ] as const
  for (const c of impossible) it(`refuses ${c.name}`, () => assert.equal(encodeQueryName(c.in), undefined))

  it('encodes length-prefixed labels ending in the root label (RFC 1035 §3.1)', () => {
    assert.deepEqual([...(encodeQueryName('a:b.ex')?.wire ?? [])], [3, 97, 58, 98, 2, 101, 120, 0])
  })

  it('compares names without regard to ASCII case or a trailing dot (RFC 4343)', () => {
    assert.ok(sameName('MX.example.com.', 'mx.EXAMPLE.com'))
    assert.ok(!sameName('mx.example.com', 'mx.example.co'))
  })
})
