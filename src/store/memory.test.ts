import { storeContract, textGarbage } from './contract-suite.ts'
import { memoryStore } from './memory.ts'
import type { Store } from './store.ts'

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
