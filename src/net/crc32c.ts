/**
 * CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected; RFC 3720 §12.1, the checksum of iSCSI,
 * SCTP and the PROXY protocol v2 CRC32C TLV). Node's `zlib.crc32` is the other CRC-32
 * (ISO-HDLC, polynomial 0x04C11DB7), so this is a table-driven byte-at-a-time version: the
 * PROXY header it checks is at most a few kilobytes, once per connection.
 */

/** 0x82F63B78 is 0x1EDC6F41 bit-reversed, for the reflected (LSB-first) form. */
const table = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  return c
})

/**
 * The CRC-32C of `data`; pass the previous result as `crc` to go on over a second piece
 * (`crc32c(b, crc32c(a))` is `crc32c(Buffer.concat([a, b]))`).
 */
export function crc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0
  for (const byte of data) c = (table[(c ^ byte) & 0xff] as number) ^ (c >>> 8)
  return ~c >>> 0
}
