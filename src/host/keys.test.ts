import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { defineKey, Notes } from './keys.ts'

describe('typed keys', () => {
  it('two definitions of one name read and write one value (a second copy of qtsmtpd)', () => {
    const mine = defineKey<string[]>('test/shared-reasons', { scope: 'connection', initial: () => [] })
    const theirs = defineKey<string[]>('test/shared-reasons', { scope: 'connection', initial: () => [] })
    const notes = new Notes()
    notes.get(theirs).push('listed')
    assert.deepEqual(notes.get(mine), ['listed'])
    notes.set(mine, ['replaced'])
    assert.deepEqual(notes.get(theirs), ['replaced'])
    assert.equal(notes.has(theirs), true)
    notes.delete(theirs)
    assert.equal(notes.has(mine), false)
  })

  it('one name with two scopes is refused where the second is defined', () => {
    defineKey<number>('test/scoped-twice', { scope: 'connection', initial: 0 })
    assert.throws(
      () => defineKey<number>('test/scoped-twice', { scope: 'transaction', initial: 0 }),
      /^Error: key "test\/scoped-twice" is defined with scope transaction, but it already is with scope connection/,
    )
  })

  it('an unset key reads as its initial value, made once per scope', () => {
    const list = defineKey<string[]>('test/initial', { scope: 'transaction', initial: () => [] })
    const a = new Notes()
    const b = new Notes()
    a.get(list).push('x')
    assert.deepEqual(a.get(list), ['x'])
    assert.deepEqual(b.get(list), [])
    assert.deepEqual(a.snapshot(), { 'test/initial': ['x'] })
  })

  it('a name must be a non-empty string and the scope one of the two', () => {
    assert.throws(() => defineKey('', { scope: 'connection', initial: 0 }), /non-empty string/)
    assert.throws(() => defineKey('test/bad-scope', { scope: 'session' as never, initial: 0 }), /scope must be/)
  })
})
