import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { describe, it } from 'node:test'
import { systemClock } from './clock.ts'
import { fakeClock } from './fake.ts'

describe('systemClock', () => {
  it('tells the time in epoch milliseconds', () => {
    const before = Date.now()
    const t = systemClock.now()
    assert.ok(t >= before && t <= Date.now())
  })

  it('sleeps and leaves no abort listener behind', async () => {
    const ac = new AbortController()
    await systemClock.sleep(1, ac.signal)
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0)
  })

  it('rejects with the reason when the signal aborts during the sleep, or had already', async () => {
    const ac = new AbortController()
    const gone = new Error('client gone')
    const sleeping = systemClock.sleep(60_000, ac.signal)
    ac.abort(gone)
    await assert.rejects(sleeping, (e) => e === gone)
    await assert.rejects(systemClock.sleep(60_000, ac.signal), (e) => e === gone)
  })
})

describe('fakeClock', () => {
  it('stands still until advanced, then wakes sleepers in deadline order', async () => {
    const clock = fakeClock(1_000)
    const woke: string[] = []
    void clock.sleep(300).then(() => woke.push(`b@${clock.now()}`))
    void clock.sleep(100).then(() => woke.push(`a@${clock.now()}`))
    void clock.sleep(900).then(() => woke.push(`c@${clock.now()}`))
    assert.equal(clock.sleepers, 3)
    await clock.advance(500)
    assert.deepEqual(woke, ['a@1100', 'b@1300'])
    assert.equal(clock.now(), 1_500)
    assert.equal(clock.sleepers, 1)
    await clock.advance(400)
    assert.deepEqual(woke, ['a@1100', 'b@1300', 'c@1900'])
  })

  it('wakes a sleeper that sleeps again within the same advance', async () => {
    const clock = fakeClock(0)
    const seen: number[] = []
    const loop = (async () => {
      for (let i = 0; i < 3; i++) {
        await clock.sleep(10)
        seen.push(clock.now())
      }
    })()
    await clock.advance(30)
    await loop
    assert.deepEqual(seen, [10, 20, 30])
  })

  it('rejects a sleeper whose signal aborts, and forgets it', async () => {
    const clock = fakeClock()
    const ac = new AbortController()
    const sleeping = clock.sleep(1_000, ac.signal)
    ac.abort(new Error('gone'))
    await assert.rejects(sleeping, /gone/)
    assert.equal(clock.sleepers, 0)
  })

  it('tells when someone is sleeping', async () => {
    const clock = fakeClock()
    const waiting = clock.sleeping(2)
    void clock.sleep(5)
    assert.equal(await Promise.race([waiting.then(() => 'woke'), Promise.resolve('still waiting')]), 'still waiting')
    void clock.sleep(5)
    await waiting
    await clock.advance(5)
    assert.equal(clock.sleepers, 0)
  })

  it('refuses to go backwards', async () => {
    await assert.rejects(fakeClock().advance(-1), /only goes forward/)
  })
})
