/**
 * A verdict a hook may not return (`rewrite` outside the *_parse/*_pre hooks, from a plain
 * JavaScript plugin that the types cannot check) is a plugin failure: 451, never no reply.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { accept } from '../../src/host/verdict.ts'
import { startTestServer } from '../../src/testing/index.ts'

const misplaced = { kind: 'rewrite', raw: { path: '<x@y.test>', params: '' } } as never

const confused = definePlugin({
  name: 'test/confused',
  options: {},
  setup: () => ({
    hooks: {
      helo: async () => misplaced,
    },
  }),
})

test('rewrite from a hook that cannot rewrite gets a reply (451), not silence', async () => {
  const srv = await startTestServer({ plugins: [confused()], logLevel: 3 })
  try {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('HELO client.test', /^451 /, 2000)
    await c.quit()
  } finally {
    await srv.close()
  }
})

const onlyRcpt = definePlugin({
  name: 'test/confused-rcpt',
  options: {},
  setup: () => ({ hooks: { mail: async () => accept(), rcpt: async () => misplaced } }),
})

test('rewrite from the rcpt hook gets 451', async () => {
  const srv = await startTestServer({ plugins: [onlyRcpt()], logLevel: 3 })
  try {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('HELO client.test', 250)
    await c.send('MAIL FROM:<a@sender.test>', 250)
    await c.send('RCPT TO:<b@local.test>', /^451 /, 2000)
    assert.equal(srv.queued.length, 0)
    await c.quit()
  } finally {
    await srv.close()
  }
})
