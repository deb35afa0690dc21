/** p0f 3 answers made by hand, for the client's and the plugin's tests of what a real p0f never sends. */
import { endianness } from 'node:os'
import { RESPONSE_BYTES } from './p0f.ts'

const LE = endianness() === 'LE'
const u32 = (b: Buffer, n: number, at: number) => (LE ? b.writeUInt32LE(n, at) : b.writeUInt32BE(n, at))

/** A p0f 3 answer as api.c writes it (host byte order, strings NUL-padded to 32 bytes). */
export function p0fAnswerBytes(
  o: {
    magic?: number
    status?: number
    distance?: number
    uptimeMinutes?: number
    quality?: number
    strings?: readonly string[]
  } = {},
): Buffer {
  const b = Buffer.alloc(RESPONSE_BYTES)
  u32(b, o.magic ?? 0x50304602, 0)
  u32(b, o.status ?? 0x10, 4)
  u32(b, 1_700_000_000, 8)
  u32(b, 1_700_000_100, 12)
  u32(b, 3, 16)
  u32(b, o.uptimeMinutes ?? 0, 20)
  if (LE) b.writeInt16LE(o.distance ?? -1, 36)
  else b.writeInt16BE(o.distance ?? -1, 36)
  b[39] = o.quality ?? 0
  ;(o.strings ?? []).forEach((s, i) => {
    b.write(s, 40 + i * 32, 'latin1')
  })
  return b
}
