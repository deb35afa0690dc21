import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { newQueueId, queueIdTime } from './queue-id.ts'

describe('newQueueId', () => {
  it('is 22 file-name-safe characters and carries its time', () => {
    const now = Date.now()
    const id = newQueueId(now)
    assert.match(id, /^[0-9a-z]{22}$/)
    assert.equal(queueIdTime(id), now)
  })

  it('is unique over many calls in the same millisecond', () => {
    const ids = new Set(Array.from({ length: 20_000 }, () => newQueueId(1_700_000_000_000)))
    assert.equal(ids.size, 20_000)
  })

  it('sorts by time as a string', () => {
    const times = [0, 1, 31, 32, 1_000_000, 1_700_000_000_000, 1_700_000_000_001, 2 ** 45]
    const ids = times.map((t) => newQueueId(t))
    assert.deepEqual([...ids].sort(), ids)
  })
})
