import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createSlots } from './slots.ts'

describe('dns/slots: lookups on the wire at once', () => {
  it('past the limit, lookups wait and get their turn in order', async () => {
    const slots = createSlots(1)
    assert.equal(await slots.acquire(1000, undefined), true)
    const order: string[] = []
    const second = slots.acquire(10_000, undefined).then((ok) => order.push(`second ${ok}`))
    const third = slots.acquire(10_000, undefined).then((ok) => order.push(`third ${ok}`))
    slots.release()
    await second
    slots.release()
    await third
    assert.deepEqual(order, ['second true', 'third true'])
    assert.equal(slots.waited, 2)
  })

  it('a lookup whose deadline passes while waiting gets no slot, and does not take one later', async () => {
    const slots = createSlots(1)
    await slots.acquire(1000, undefined)
    assert.equal(await slots.acquire(1, undefined), false)
    slots.release()
    assert.equal(await slots.acquire(1, undefined), true)
  })

  it("a waiting lookup leaves the queue when its signal aborts, rejected with the signal's reason", async () => {
    const slots = createSlots(1)
    await slots.acquire(1000, undefined)
    const controller = new AbortController()
    const waiting = slots.acquire(10_000, controller.signal)
    const reason = new Error('client gone')
    controller.abort(reason)
    await assert.rejects(waiting, (e) => e === reason)
    slots.release()
    assert.equal(await slots.acquire(1, undefined), true)
  })
})
