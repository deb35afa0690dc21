import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { crc32 } from 'node:zlib'
import { crc32c } from './crc32c.ts'

const iscsiReadPdu = Buffer.from(
  '01c000000000000000000000000000001400000000000400000000140000001828000000000000000200000000000000',
  'hex',
)

describe('net/crc32c', () => {
  // RFC 3720 appendix B.4 prints each CRC as the bytes sent, least significant first
  // ("aa 36 91 8a" for 32 zero bytes is 0x8a9136aa).
  const rfc3720 = [
    { name: '32 bytes of zeroes', data: Buffer.alloc(32), want: 0x8a9136aa },
    { name: '32 bytes of ones', data: Buffer.alloc(32, 0xff), want: 0x62a8ab43 },
    {
      name: '32 bytes incrementing 00..1f',
      data: Buffer.from(Array.from({ length: 32 }, (_, i) => i)),
      want: 0x46dd794e,
    },
    {
      name: '32 bytes decrementing 1f..00',
      data: Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)),
      want: 0x113fdb5c,
    },
    { name: 'an iSCSI SCSI Read (10) command PDU', data: iscsiReadPdu, want: 0xd9963a56 },
  ]
  for (const c of rfc3720) test(`RFC 3720 B.4: ${c.name}`, () => assert.equal(crc32c(c.data), c.want))

  test('the CRC catalogue check value, and the empty input', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
    assert.equal(crc32c(Buffer.alloc(0)), 0)
  })

  test('continues over pieces', () => {
    for (let cut = 0; cut <= iscsiReadPdu.length; cut++)
      assert.equal(crc32c(iscsiReadPdu.subarray(cut), crc32c(iscsiReadPdu.subarray(0, cut))), 0xd9963a56, `${cut}`)
  })

  test("is not zlib's CRC-32 (ISO-HDLC)", () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926)
    assert.notEqual(crc32c(Buffer.from('123456789')), crc32(Buffer.from('123456789')))
  })
})
