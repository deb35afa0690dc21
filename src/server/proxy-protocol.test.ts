import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { crc32 } from 'node:zlib'
import { crc32c } from '../net/crc32c.ts'
import { looksLikeProxyHeader, parseProxyHeader, V2_SIGNATURE } from './proxy-protocol.ts'

const v1 = (s: string) => Buffer.from(s, 'latin1')

function tlv(type: number, value: Buffer | string): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value) : value
  const h = Buffer.alloc(3)
  h[0] = type
  h.writeUInt16BE(v.length, 1)
  return Buffer.concat([h, v])
}

function v2(opts: { cmd?: number; fam?: number; addr?: Buffer; tlvs?: Buffer[]; version?: number }): Buffer {
  const body = Buffer.concat([opts.addr ?? Buffer.alloc(0), ...(opts.tlvs ?? [])])
  const h = Buffer.alloc(4)
  h[0] = ((opts.version ?? 2) << 4) | (opts.cmd ?? 1)
  h[1] = opts.fam ?? 0x11
  h.writeUInt16BE(body.length, 2)
  return Buffer.concat([V2_SIGNATURE, h, body])
}

const inet = (src: number[], dst: number[], sport: number, dport: number) => {
  const b = Buffer.alloc(12)
  Buffer.from(src).copy(b, 0)
  Buffer.from(dst).copy(b, 4)
  b.writeUInt16BE(sport, 8)
  b.writeUInt16BE(dport, 10)
  return b
}

describe('PROXY v1', () => {
  const cases = [
    {
      name: 'TCP4',
      in: 'PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO x\r\n',
      want: { source: { ip: '192.0.2.7', port: 56324 }, destination: { ip: '198.51.100.1', port: 25 }, length: 44 },
    },
    {
      name: 'TCP6, compressed on output',
      in: 'PROXY TCP6 2001:DB8:0:0:0:0:0:1 2001:db8::25 1 65535\r\n',
      want: { source: { ip: '2001:db8::1', port: 1 }, destination: { ip: '2001:db8::25', port: 65535 }, length: 54 },
    },
  ]
  for (const c of cases) {
    test(c.name, () => {
      const r = parseProxyHeader(v1(c.in))
      assert.equal(r.status, 'done')
      if (r.status !== 'done' || r.header.command !== 'proxy') return assert.fail('not a proxy header')
      assert.deepEqual(r.header.source, c.want.source)
      assert.deepEqual(r.header.destination, c.want.destination)
      assert.equal(r.length, c.want.length)
      assert.equal(r.header.version, 1)
    })
  }

  test('UNKNOWN, with or without addresses, is a local connection', () => {
    for (const s of ['PROXY UNKNOWN\r\n', 'PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n']) {
      const r = parseProxyHeader(v1(s))
      assert.equal(r.status, 'done')
      if (r.status === 'done') {
        assert.equal(r.header.command, 'local')
        assert.equal(r.length, s.length)
      }
    }
  })

  test('incomplete until the CRLF, at most 107 bytes', () => {
    for (const s of ['P', 'PROXY', 'PROXY TCP4 1.2.3.4', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r'])
      assert.equal(parseProxyHeader(v1(s)).status, 'incomplete', s)
    const long = `PROXY TCP6 ${'a'.repeat(120)}`
    assert.match(String((parseProxyHeader(v1(long)) as { reason?: string }).reason), /107/)
  })

  const bad = [
    ['garbage', 'GET / HTTP/1.0\r\n'],
    ['lower case', 'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['octal octet', 'PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n'],
    ['IPv6 in TCP4', 'PROXY TCP4 ::1 ::1 1 2\r\n'],
    ['IPv4 in TCP6', 'PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['zone id', 'PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'],
    ['port out of range', 'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'],
    ['leading zero port', 'PROXY TCP4 1.2.3.4 5.6.7.8 025 2\r\n'],
    ['missing field', 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'],
    ['double space', 'PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'],
    ['UDP', 'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['bare LF', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'],
  ] as const
  for (const [name, s] of bad) test(`refused: ${name}`, () => assert.equal(parseProxyHeader(v1(s)).status, 'error'))
})

describe('PROXY v2', () => {
  test('PROXY over TCP/IPv4, with the bytes after the header left alone', () => {
    const h = v2({ addr: inet([192, 0, 2, 9], [10, 0, 0, 1], 40000, 25) })
    const r = parseProxyHeader(Buffer.concat([h, Buffer.from('EHLO x\r\n')]))
    assert.equal(r.status, 'done')
    if (r.status !== 'done' || r.header.command !== 'proxy') return assert.fail()
    assert.deepEqual(r.header.source, { ip: '192.0.2.9', port: 40000 })
    assert.deepEqual(r.header.destination, { ip: '10.0.0.1', port: 25 })
    assert.equal(r.length, h.length)
  })

  test('PROXY over TCP/IPv6', () => {
    const addr = Buffer.alloc(36)
    Buffer.from('20010db8000000000000000000000001', 'hex').copy(addr, 0)
    Buffer.from('00000000000000000000ffffc0000201', 'hex').copy(addr, 16)
    addr.writeUInt16BE(1234, 32)
    addr.writeUInt16BE(587, 34)
    const r = parseProxyHeader(v2({ fam: 0x21, addr }))
    if (r.status !== 'done' || r.header.command !== 'proxy') return assert.fail(JSON.stringify(r))
    assert.deepEqual(r.header.source, { ip: '2001:db8::1', port: 1234 })
    assert.deepEqual(r.header.destination, { ip: '::ffff:192.0.2.1', port: 587 })
  })

  test('LOCAL (health checks), UNSPEC and UNIX are local connections', () => {
    for (const h of [
      v2({ cmd: 0, fam: 0x00 }),
      v2({ cmd: 0, fam: 0x11, addr: inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2) }),
      v2({ fam: 0x00 }),
      v2({ fam: 0x31, addr: Buffer.alloc(216) }),
    ]) {
      const r = parseProxyHeader(h)
      assert.equal(r.status, 'done')
      if (r.status === 'done') assert.equal(r.header.command, 'local')
    }
  })

  test('TLVs: ALPN, AUTHORITY, UNIQUE_ID, SSL with sub-TLVs; unknown ones skipped', () => {
    const sslValue = Buffer.concat([
      Buffer.from([0x07, 0, 0, 0, 0]),
      tlv(0x21, 'TLSv1.3'),
      tlv(0x22, 'client.example'),
      tlv(0x23, 'TLS_AES_256_GCM_SHA384'),
      tlv(0x25, 'RSA2048'),
    ])
    const r = parseProxyHeader(
      v2({
        addr: inet([192, 0, 2, 1], [192, 0, 2, 2], 5, 6),
        tlvs: [
          tlv(0x01, 'smtp'),
          tlv(0x02, 'mx.example.com'),
          tlv(0x05, Buffer.from([1, 2, 3])),
          tlv(0xe0, 'custom'),
          tlv(0x04, Buffer.alloc(10)),
          tlv(0x20, sslValue),
        ],
      }),
    )
    if (r.status !== 'done') return assert.fail(JSON.stringify(r))
    const t = r.header.tlvs
    assert.equal(t.alpn, 'smtp')
    assert.equal(t.authority, 'mx.example.com')
    assert.deepEqual(t.uniqueId, Buffer.from([1, 2, 3]))
    assert.deepEqual(t.ssl, {
      ssl: true,
      certConnection: true,
      certSession: true,
      verified: true,
      version: 'TLSv1.3',
      cn: 'client.example',
      cipher: 'TLS_AES_256_GCM_SHA384',
      sigAlg: undefined,
      keyAlg: 'RSA2048',
    })
  })

  test('a control character in a TLV text is dropped, not passed on', () => {
    const r = parseProxyHeader(
      v2({ addr: inet([1, 1, 1, 1], [2, 2, 2, 2], 1, 2), tlvs: [tlv(0x02, 'evil\r\nX-Header: 1')] }),
    )
    if (r.status !== 'done') return assert.fail()
    assert.equal(r.header.tlvs.authority, undefined)
  })

  test('truncated at every length is incomplete, never an exception', () => {
    const h = v2({ addr: inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), tlvs: [tlv(0x02, 'a.example')] })
    for (let n = 1; n < h.length; n++)
      assert.equal(parseProxyHeader(h.subarray(0, n)).status, 'incomplete', `${n} bytes`)
    assert.equal(parseProxyHeader(h).status, 'done')
  })

  test('oversize: refused from the length field, before the bytes arrive', () => {
    const h = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])])
    const r = parseProxyHeader(h)
    assert.equal(r.status, 'error')
    assert.match((r as { reason: string }).reason, /exceeds 4096/)
    assert.equal(parseProxyHeader(h, 100_000).status, 'incomplete')
  })

  const bad: [string, Buffer][] = [
    ['version 1 in a v2 header', v2({ version: 1, addr: inet([1, 1, 1, 1], [1, 1, 1, 1], 1, 1) })],
    ['unknown command', v2({ cmd: 2, addr: inet([1, 1, 1, 1], [1, 1, 1, 1], 1, 1) })],
    ['unknown family', v2({ fam: 0x41, addr: Buffer.alloc(12) })],
    ['UDP', v2({ fam: 0x12, addr: inet([1, 1, 1, 1], [1, 1, 1, 1], 1, 1) })],
    ['address block too short', v2({ fam: 0x21, addr: Buffer.alloc(12) })],
    [
      'TLV longer than the header',
      v2({ addr: inet([1, 1, 1, 1], [1, 1, 1, 1], 1, 1), tlvs: [Buffer.from([0x02, 0x00, 0x09, 0x41])] }),
    ],
    ['truncated TLV header', v2({ addr: inet([1, 1, 1, 1], [1, 1, 1, 1], 1, 1), tlvs: [Buffer.from([0x02, 0x00])] })],
    ['truncated SSL TLV', v2({ addr: inet([1, 1, 1, 1], [1, 1, 1, 1], 1, 1), tlvs: [tlv(0x20, Buffer.from([1, 0]))] })],
    [
      'bad signature',
      Buffer.concat([
        Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0b]),
        Buffer.alloc(4),
      ]),
    ],
  ]
  for (const [name, b] of bad) test(`refused: ${name}`, () => assert.equal(parseProxyHeader(b).status, 'error'))
})

describe('PROXY v2 CRC32C TLV', () => {
  const addr = inet([192, 0, 2, 9], [10, 0, 0, 1], 40000, 25)
  /** A header with a zeroed CRC32C TLV after `before`, then the checksum `sum` put in its place. */
  function withCrc(opts: { before?: Buffer[]; after?: Buffer[]; cmd?: number; sum?: (h: Buffer) => Buffer }): Buffer {
    const before = opts.before ?? []
    const h = v2({ cmd: opts.cmd ?? 1, addr, tlvs: [...before, tlv(0x03, Buffer.alloc(4)), ...(opts.after ?? [])] })
    const at = 16 + addr.length + Buffer.concat(before).length + 3
    const sum = opts.sum ?? ((x) => u32be(crc32c(x)))
    sum(h).copy(h, at)
    return h
  }
  const u32be = (n: number) => {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(n)
    return b
  }

  test('a matching checksum (first, between or last of the TLVs) is accepted', () => {
    for (const h of [
      withCrc({ after: [tlv(0x02, 'mx.example')] }),
      withCrc({ before: [tlv(0x01, 'smtp')], after: [tlv(0x02, 'mx.example')] }),
      withCrc({ before: [tlv(0x02, 'mx.example'), tlv(0x04, Buffer.alloc(7))] }),
      withCrc({ cmd: 0 }),
    ]) {
      const r = parseProxyHeader(Buffer.concat([h, Buffer.from('EHLO x\r\n')]))
      if (r.status !== 'done') return assert.fail(JSON.stringify(r))
      assert.equal(r.length, h.length)
    }
  })

  test('the received bytes are left as they came (the checksum is not zeroed in place)', () => {
    const h = withCrc({ after: [tlv(0x02, 'mx.example')] })
    const copy = Buffer.from(h)
    assert.equal(parseProxyHeader(h).status, 'done')
    assert.deepEqual(h, copy)
  })

  test('one flipped bit anywhere in the header is refused, with the reason', () => {
    const h = withCrc({ after: [tlv(0x02, 'mx.example')] })
    // From the address block on: a flip before it breaks the signature, version or length first.
    const crcType = 16 + addr.length
    for (let at = 16; at < h.length; at++) {
      // 0x03 ^ 0x04 makes the checksum an unknown TLV (7), skipped: a header without a checksum.
      if (at === crcType) continue
      const bad = Buffer.from(h)
      bad[at] = (bad[at] as number) ^ 0x04
      const r = parseProxyHeader(bad)
      // A flip inside a TLV's type or length may break the TLV list before the sum is checked.
      assert.equal(r.status, 'error', `bit flipped at ${at}`)
    }
    const bad = Buffer.from(h)
    bad[16] = 193
    const r = parseProxyHeader(bad)
    assert.equal(r.status, 'error')
    assert.match(
      (r as { reason: string }).reason,
      /^v2 header: CRC32C mismatch \(header says 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\): altered in transit or a broken proxy$/,
    )
  })

  const bad: [string, Buffer, RegExp][] = [
    ["zlib's CRC-32 instead of CRC-32C", withCrc({ sum: (x) => u32be(crc32(x)) }), /CRC32C mismatch/],
    [
      'the checksum in little-endian order',
      withCrc({
        sum: (x) => {
          const b = Buffer.alloc(4)
          b.writeUInt32LE(crc32c(x))
          return b
        },
      }),
      /CRC32C mismatch/,
    ],
    ['a checksum of the header without zeroing its field', withCrc({ sum: () => Buffer.from('abcd') }), /mismatch/],
    ['a 3-byte CRC32C TLV', v2({ addr, tlvs: [tlv(0x03, Buffer.alloc(3))] }), /CRC32C TLV of 3 bytes, not 4/],
    ['a 5-byte CRC32C TLV', v2({ addr, tlvs: [tlv(0x03, Buffer.alloc(5))] }), /CRC32C TLV of 5 bytes, not 4/],
    [
      'two CRC32C TLVs',
      withCrc({ after: [tlv(0x03, Buffer.alloc(4))], sum: (x) => u32be(crc32c(x)) }),
      /more than one CRC32C TLV/,
    ],
  ]
  for (const [name, h, reason] of bad)
    test(`refused: ${name}`, () => {
      const r = parseProxyHeader(h)
      assert.equal(r.status, 'error')
      assert.match((r as { reason: string }).reason, reason)
    })

  test('truncated at every length is incomplete, never a checksum error', () => {
    const h = withCrc({ after: [tlv(0x02, 'mx.example')] })
    for (let n = 1; n < h.length; n++) assert.equal(parseProxyHeader(h.subarray(0, n)).status, 'incomplete', `${n}`)
  })
})

test('looksLikeProxyHeader: v1 and v2 prefixes, not SMTP', () => {
  assert.ok(looksLikeProxyHeader(Buffer.from('PROXY TCP4 ')))
  assert.ok(!looksLikeProxyHeader(Buffer.from('PRO')))
  assert.ok(looksLikeProxyHeader(V2_SIGNATURE))
  assert.ok(!looksLikeProxyHeader(Buffer.from('EHLO x\r\n')))
  assert.ok(!looksLikeProxyHeader(Buffer.from('\r\n')))
})
