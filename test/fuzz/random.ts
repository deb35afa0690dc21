/**
 * Seeded randomness for every fuzzer: the same seed gives the same cases, so the seed a failure
 * prints reproduces it (`npx node test/fuzz/run.ts <seconds> <seed>`).
 */

export type Random = () => number

/** mulberry32: small, seedable, good enough to pick characters, bytes and sizes. */
export function rng(seed: number): Random {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer in [0, n). */
export const below = (rand: Random, n: number): number => Math.floor(rand() * n)

export const pick = <T>(rand: Random, list: readonly T[]): T => list[below(rand, list.length)] as T

/** `length` random octets. */
export function randomOctets(rand: Random, length: number): Buffer {
  const out = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) out[i] = below(rand, 256)
  return out
}

/**
 * The loop condition of a fuzzer that runs for `seconds`: true at least once, so a run on a
 * loaded machine still checks a case instead of finding its time already spent.
 */
export function forSeconds(seconds: number): () => boolean {
  const deadline = performance.now() + seconds * 1000
  let first = true
  return () => {
    const go = first || performance.now() < deadline
    first = false
    return go
  }
}
