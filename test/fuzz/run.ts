/**
 * Runs every fuzzer for the given seconds each (default 3): `npm run fuzz -- 60` or
 * `npx node test/fuzz/run.ts 60 [seed]`. Exits non-zero on the first failure, printing the
 * seed and input that reproduce it. Longer runs are described in docs/testing.md.
 */
import { fuzzCodec } from './codec.fuzz.ts'
import { fuzzFloodSessions, fuzzFloodSpool } from './flood.fuzz.ts'
import { fuzzParsers } from './parsers.fuzz.ts'
import { fuzzSasl } from './sasl.fuzz.ts'
import { fuzzBareLfDialogues, fuzzOvershoot } from './session.fuzz.ts'

export const fuzzers = {
  codec: (seconds: number, seed: number) => fuzzCodec(seconds, seed),
  parsers: (seconds: number, seed: number) => fuzzParsers(seconds, seed),
  sasl: (seconds: number, seed: number) => fuzzSasl(seconds, seed),
  'bare-LF dialogues': (seconds: number, seed: number) => fuzzBareLfDialogues(seconds, seed),
  'overshooting pipelines': (seconds: number, seed: number) => fuzzOvershoot(seconds, seed),
  'dot-stuffed and tiny-chunk floods, spool': (seconds: number, seed: number) => fuzzFloodSpool(seconds, seed),
  'dot-stuffed and tiny-chunk floods, sessions': (seconds: number, seed: number) => fuzzFloodSessions(seconds, seed),
} as const

export async function runAll(seconds: number, seed: number): Promise<boolean> {
  let ok = true
  for (const [name, run] of Object.entries(fuzzers)) {
    const started = performance.now()
    try {
      const { iterations } = await run(seconds, seed)
      const ms = Math.round(performance.now() - started)
      console.log(`fuzz ${name}: ${iterations} cases in ${ms} ms, seed ${seed}, no failures`)
    } catch (err) {
      ok = false
      console.error(`fuzz ${name} FAILED (seed ${seed}):`, err)
    }
  }
  return ok
}

if (import.meta.main) {
  const seconds = Number(process.argv[2] ?? 3)
  const seed = process.argv[3] === undefined ? Date.now() : Number(process.argv[3])
  if (!Number.isFinite(seconds) || seconds <= 0 || !Number.isFinite(seed)) {
    console.error('usage: node test/fuzz/run.ts [seconds > 0] [seed]')
    process.exit(2)
  }
  process.exitCode = (await runAll(seconds, seed)) ? 0 : 1
}
