import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runChild } from './child-process.ts'

describe('runChild', () => {
  it('reports a program that cannot start', async () => {
    const r = await runChild({ argv: ['/nonexistent/prog'], stdio: 'pipe', timeoutMs: 1000 })
    assert.equal(r.code, undefined)
    assert.match(String(r.spawnError), /ENOENT/)
  })
  it('kills at the timeout', async () => {
    const r = await runChild({ argv: ['/bin/sleep', '5'], stdio: 'pipe', timeoutMs: 100 })
    assert.equal(r.timedOut, true)
    assert.equal(r.signal, 'SIGKILL')
  })
  it('kills on abort', async () => {
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 50)
    const r = await runChild({ argv: ['/bin/sleep', '5'], stdio: 'pipe', timeoutMs: 5000, signal: ac.signal })
    assert.equal(r.signal, 'SIGKILL')
    assert.equal(r.timedOut, false)
  })
  it('caps captured output', async () => {
    const r = await runChild({
      argv: ['/usr/bin/head', '-c', '100000', '/dev/zero'],
      stdio: 'pipe',
      timeoutMs: 5000,
      maxOutput: 10,
    })
    assert.equal(r.code, 0)
    assert.equal(r.stdout.length, 10)
  })
})
