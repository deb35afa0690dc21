/** Each fuzzer for one second in the normal test run; `npm run fuzz -- <seconds>` runs longer. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { fuzzers } from './run.ts'

for (const [name, run] of Object.entries(fuzzers)) {
  test(`fuzz ${name} for 1 s`, async (t) => {
    const seed = Date.now()
    const { iterations } = await run(1, seed)
    t.diagnostic(`${iterations} cases, seed ${seed}`)
    assert.ok(iterations > 0)
  })
}
