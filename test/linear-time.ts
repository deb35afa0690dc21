/**
 * Linear-time checks for the parsers' ReDoS tests (docs/security.md), without an absolute time
 * bound: a bound such as "64 KB in under 10 ms" failed under coverage and on a loaded machine.
 * Instead the same work is timed at two sizes, n and 16n, and the fastest runs are compared. A
 * linear parser takes about 16 times as long for 16 times the input, a quadratic one 256 times
 * and a backtracking one far more; the bound of 64 leaves a factor of 4 for noise either way,
 * and the ratio does not change with the machine's speed or load.
 */
import assert from 'node:assert/strict'

const FACTOR = 16
const BOUND = 64
const RUNS = 7

/** The fastest of RUNS runs of `work(input)`, in ms. */
function fastest(work: (input: string) => unknown, input: string): number {
  let best = Number.POSITIVE_INFINITY
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now()
    work(input)
    best = Math.min(best, performance.now() - t0)
  }
  return best
}

/**
 * How much longer `work` takes on `make(16n)` than on `make(n)`.
 *
 * @example
 *   assert.ok(growth((n) => 'a+41'.repeat(n / 4), decodeXtext, 4096) < 64)
 */
export function growth(make: (n: number) => string, work: (input: string) => unknown, n: number): number {
  const small = make(n)
  const large = make(n * FACTOR)
  // Warm up first, so the JIT compiles the code before either size is timed.
  fastest(work, small)
  fastest(work, large)
  // A floor of one microsecond keeps a run too fast to time from making the ratio huge.
  return fastest(work, large) / Math.max(fastest(work, small), 0.001)
}

/** Fails when `work` grows faster than linearly from `make(n)` to `make(16n)`. */
export function assertLinear(
  what: string,
  make: (n: number) => string,
  work: (input: string) => unknown,
  n = 4096,
): void {
  const ratio = growth(make, work, n)
  assert.ok(ratio < BOUND, `${what}: ${FACTOR} times the input took ${ratio.toFixed(1)} times as long`)
}
