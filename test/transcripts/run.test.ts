/**
 * Runs every golden transcript in this folder (test/transcripts/*.smtp) against a fresh server.
 * `TRANSCRIPT=name npx node --test test/transcripts/run.test.ts` runs only the files whose name
 * contains `name`. The format is in transcript.ts and docs/testing.md.
 */
import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { loadTranscript, parseTranscript, playTranscript } from './transcript.ts'

const here = dirname(fileURLToPath(import.meta.url))
const only = process.env.TRANSCRIPT
const files = (await readdir(here)).filter((f) => f.endsWith('.smtp') && (only === undefined || f.includes(only)))

test('there are transcripts', () => {
  assert.ok(only !== undefined || files.length >= 20, `only ${files.length} transcripts`)
})

test('the parser refuses unknown lines and settings', () => {
  assert.throws(() => parseTranscript('x', 'X: nope\n'), /x:1: unknown line/)
  assert.throws(() => parseTranscript('x', '# settings: {"limitz": {}}\n'), /unknown setting limitz/)
  assert.throws(() => parseTranscript('x', 'C~ 12\n'), /JSON string/)
  const t = parseTranscript('x', 'C~ "a\\r\\n\\u0000"\nS~ ^2\nQ: 0\nCLOSE\n')
  assert.deepEqual(
    t.steps.map((s) => s.op),
    ['send', 'expect', 'queue', 'close'],
  )
})

for (const f of files.sort()) {
  test(f, async () => playTranscript(await loadTranscript(join(here, f), f)))
}
