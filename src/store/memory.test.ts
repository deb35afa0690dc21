import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { storeContract, textGarbage } from './contract-suite.ts'
import { memoryStore } from './memory.ts'
import { borrowedStore, type Store, StoreUnavailable } from './store.ts'

let current: Store | undefined

storeContract('memory', {
  open: async (clock) => {
    current = memoryStore({ now: clock.now })
    return { store: current, other: current }
  },
  ttlPasses: async (clock, ms) => clock.advance(ms),
  ttlNow: (clock) => clock.now(),
  garbage: Object.fromEntries(Object.entries(textGarbage).map(([kind, text]) => [kind, (k) => current!.set(k, text)])),
  stringGarbage: Object.keys(textGarbage),
})

describe('borrowedStore', () => {
  it('reads and writes the same keys, and its close() leaves the store open', async () => {
    const store = memoryStore()
    const lent = borrowedStore(store)
    await lent.set('k', 'v')
    assert.equal(await store.get('k'), 'v')
    assert.equal(await lent.scope('a').incr('n'), 1)
    assert.equal(await store.get('a:n'), '1')
    await lent.close()
    assert.equal(await store.get('k'), 'v')
    await store.close()
    await assert.rejects(lent.get('k'), StoreUnavailable)
  })
})
