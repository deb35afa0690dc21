import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeReply, encodePacket } from './codec.ts'
import { MilterError } from './errors.ts'

const nul = (...s: string[]) => Buffer.from(s.map((x) => `${x}\0`).join(''))
const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

describe('milter codec', () => {
  it('encodes a command: length (letter included), letter, NUL-terminated strings, numbers', () => {
    const p = encodePacket('C', [{ string: 'client.test' }, { octet: '4' }, { u16: 25 }, { string: '192.0.2.1' }])
    assert.deepEqual(p, Buffer.concat([u32(1 + 12 + 1 + 2 + 10), Buffer.from('Cclient.test\x004\x00\x19192.0.2.1\0')]))
  })

  it('refuses a string with a NUL in it: it would become two arguments', () => {
    assert.throws(() => encodePacket('M', [{ string: '<a@b>\0FAKE=1' }]), MilterError)
  })

  const good = [
    { name: 'continue', letter: 'c', data: Buffer.alloc(0), want: { kind: 'continue' } },
    { name: 'shutdown', letter: '4', data: Buffer.alloc(0), want: { kind: 'shutdown' } },
    {
      name: 'negotiation with symbol lists',
      letter: 'O',
      data: Buffer.concat([u32(6), u32(0x1ff), u32(0x80), u32(0), nul('j {daemon_name}'), u32(5), nul('i')]),
      want: {
        kind: 'negotiate',
        version: 6,
        actions: 0x1ff,
        protocol: 0x80,
        symbolLists: new Map([
          [0, 'j {daemon_name}'],
          [5, 'i'],
        ]),
      },
    },
    {
      name: 'add header',
      letter: 'h',
      data: nul('X-A', 'v\n\tw'),
      want: { kind: 'addHeader', name: 'X-A', value: 'v\n\tw' },
    },
    {
      name: 'insert header',
      letter: 'i',
      data: Buffer.concat([u32(0), nul('X-A', 'v')]),
      want: { kind: 'insertHeader', index: 0, name: 'X-A', value: 'v' },
    },
    {
      name: 'change header to empty (delete)',
      letter: 'm',
      data: Buffer.concat([u32(2), nul('X-A', '')]),
      want: { kind: 'changeHeader', index: 2, name: 'X-A', value: '' },
    },
    {
      name: 'add recipient',
      letter: '+',
      data: nul('<a@b>'),
      want: { kind: 'addRecipient', address: '<a@b>', args: undefined },
    },
    {
      name: 'add recipient with ESMTP arguments',
      letter: '2',
      data: nul('<a@b>', 'NOTIFY=NEVER'),
      want: { kind: 'addRecipient', address: '<a@b>', args: 'NOTIFY=NEVER' },
    },
    {
      name: 'change sender',
      letter: 'e',
      data: nul('<s@b>'),
      want: { kind: 'changeSender', address: '<s@b>', args: undefined },
    },
    {
      name: 'reply code with its NUL',
      letter: 'y',
      data: nul('550 5.7.1 no'),
      want: { kind: 'replyCode', text: '550 5.7.1 no' },
    },
    {
      name: 'reply code without NUL',
      letter: 'y',
      data: Buffer.from('451 later'),
      want: { kind: 'replyCode', text: '451 later' },
    },
    { name: 'quarantine', letter: 'q', data: nul('virus'), want: { kind: 'quarantine', reason: 'virus' } },
  ] as const
  for (const c of good)
    it(`decodes ${c.name}`, () => assert.deepEqual(decodeReply(c.letter, Buffer.from(c.data)), c.want))

  const bad = [
    { name: 'data after continue', letter: 'c', data: Buffer.from('x') },
    { name: 'a header without its NUL', letter: 'h', data: Buffer.from('X-A\0v') },
    { name: 'octets after the last string', letter: '-', data: Buffer.from('<a@b>\0junk') },
    { name: 'a short negotiation', letter: 'O', data: u32(6) },
    { name: 'a truncated symbol list', letter: 'O', data: Buffer.concat([u32(6), u32(0), u32(0), u32(1)]) },
    { name: 'an insert index cut short', letter: 'i', data: Buffer.from([0, 0]) },
    { name: 'an unknown letter', letter: 'Z', data: Buffer.alloc(0) },
  ] as const
  for (const c of bad)
    it(`refuses ${c.name}`, () =>
      assert.throws(
        () => decodeReply(c.letter, Buffer.from(c.data)),
        (e) => e instanceof MilterError && (e.code === 'malformed' || e.code === 'unexpected'),
      ))
})
