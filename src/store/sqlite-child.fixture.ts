/**
 * A worker process for the cross-process tests of the SQLite store: opens the file, says
 * 'ready', waits for 'go', then does its share of increments, first sightings and hits, and
 * sends back what each returned.
 */
import { sqliteStore } from './sqlite.ts'

const [file, countText] = process.argv.slice(2)
const count = Number(countText)
const store = sqliteStore({ file: file!, busyTimeoutMs: 5_000 })

process.on('message', async (msg) => {
  if (msg !== 'go') return
  const incr: number[] = []
  const hits: number[] = []
  let firsts = 0
  for (let i = 0; i < count; i++) {
    incr.push(await store.incr('shared-counter'))
    hits.push(await store.hit('shared-window', 3_600_000))
    if (await store.compareAndSet(`first-${i}`, undefined, String(process.pid))) firsts++
  }
  await store.close()
  process.send!({ incr, hits, firsts }, () => process.disconnect())
})
process.send!('ready')
