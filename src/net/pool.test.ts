import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { NetError } from './connect.ts'
import { createPool } from './pool.ts'

interface Fake {
  readonly id: number
  open: boolean
}

function fakes(opts: { max: number; idleMs?: number }) {
  let made = 0
  const destroyed: number[] = []
  const pool = createPool<Fake>({
    max: opts.max,
    idleMs: opts.idleMs ?? 60_000,
    create: async () => ({ id: ++made, open: true }),
    destroy: (f) => {
      f.open = false
      destroyed.push(f.id)
    },
    isUsable: (f) => f.open,
  })
  return { pool, destroyed, made: () => made }
}

describe('createPool', () => {
  it('reuses a resource after a call that succeeded', async () => {
    const { pool, made } = fakes({ max: 2 })
    assert.equal(await pool.use(async (f) => f.id, { timeoutMs: 1_000 }), 1)
    assert.equal(await pool.use(async (f) => f.id, { timeoutMs: 1_000 }), 1)
    assert.equal(made(), 1)
    assert.deepEqual(pool.stats(), { busy: 0, idle: 1, waiting: 0 })
    await pool.close()
  })

  it('destroys a resource whose call threw', async () => {
    const { pool, destroyed } = fakes({ max: 2 })
    await assert.rejects(
      pool.use(async () => Promise.reject(new Error('protocol error')), { timeoutMs: 1_000 }),
      /protocol error/,
    )
    assert.deepEqual(destroyed, [1])
    assert.equal(await pool.use(async (f) => f.id, { timeoutMs: 1_000 }), 2)
    await pool.close()
  })

  it('skips an idle resource that is no longer usable', async () => {
    const { pool, destroyed } = fakes({ max: 1 })
    const first = await pool.use(async (f) => f, { timeoutMs: 1_000 })
    first.open = false
    assert.equal(await pool.use(async (f) => f.id, { timeoutMs: 1_000 }), 2)
    assert.deepEqual(destroyed, [1])
    await pool.close()
  })

  it('never has more than max at once; a caller waits for one to come back', async () => {
    const { pool, made } = fakes({ max: 2 })
    let release!: () => void
    const held = new Promise<void>((r) => {
      release = r
    })
    const busy = [pool.use(() => held, { timeoutMs: 1_000 }), pool.use(() => held, { timeoutMs: 1_000 })]
    const third = pool.use(async (f) => f.id, { timeoutMs: 5_000 })
    await new Promise((r) => setTimeout(r, 10))
    assert.deepEqual(pool.stats(), { busy: 2, idle: 0, waiting: 1 })
    release()
    await Promise.all(busy)
    assert.ok([1, 2].includes(await third))
    assert.equal(made(), 2)
    await pool.close()
  })

  it('gives up waiting at the deadline, or when the signal aborts', async () => {
    const { pool } = fakes({ max: 1 })
    let release!: () => void
    const held = pool.use(() => new Promise<void>((r) => (release = r)), { timeoutMs: 1_000 })
    await assert.rejects(
      pool.use(async () => 'never', { timeoutMs: 30 }),
      (e) => e instanceof NetError && e.code === 'ETIMEDOUT' && /no pooled connection within 30 ms/.test(e.message),
    )
    const ac = new AbortController()
    const waiting = pool.use(async () => 'never', { timeoutMs: 60_000, signal: ac.signal })
    const gone = new Error('client gone')
    ac.abort(gone)
    await assert.rejects(waiting, (e) => e === gone)
    assert.equal(pool.stats().waiting, 0)
    release()
    await held
    await pool.close()
  })

  it('closes idle resources after idleMs', async () => {
    const { pool, destroyed } = fakes({ max: 1, idleMs: 20 })
    await pool.use(async () => {}, { timeoutMs: 1_000 })
    while (destroyed.length === 0) await new Promise((r) => setTimeout(r, 5))
    assert.deepEqual(pool.stats(), { busy: 0, idle: 0, waiting: 0 })
  })

  it('destroys idle ones on close, busy ones when they come back, and refuses new calls', async () => {
    const { pool, destroyed } = fakes({ max: 2 })
    let release!: () => void
    const busy = pool.use(() => new Promise<void>((r) => (release = r)), { timeoutMs: 1_000 })
    await new Promise((r) => setTimeout(r, 5))
    await pool.use(async () => {}, { timeoutMs: 1_000 })
    await pool.close()
    assert.deepEqual(destroyed, [2])
    release()
    await busy
    assert.deepEqual(destroyed, [2, 1])
    await assert.rejects(
      pool.use(async () => {}, { timeoutMs: 1_000 }),
      /the pool is closed/,
    )
  })
})
