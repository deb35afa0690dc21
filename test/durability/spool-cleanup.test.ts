/**
 * A spool file that cannot be removed (docs/security.md §4, issue 18 F8): on a spool that turned
 * read-only the removal fails with EROFS, and the client used to get an unsolicited 451 after the
 * real reply, then a closed connection. A failed cleanup is logged and nothing else: one reply per
 * command, the session goes on, and a client that leaves mid-message takes nothing down with it.
 * Root ignores file modes and no read-only mount is at hand, so the test makes the removal fail the
 * way a root process can see it: the spool file is replaced by a directory (unlink: EISDIR).
 */
import assert from 'node:assert/strict'
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { accept } from '../../src/host/verdict.ts'
import { acceptAllRecipients, startTestServer, type TestServer } from '../../src/testing/index.ts'

/** Replaces a spool file by a non-empty directory of the same name, so that unlink() fails. */
async function makeIrremovable(path: string): Promise<void> {
  await rm(path)
  await mkdir(path)
  await writeFile(join(path, 'keep'), '')
}

/** Queues every message, after making its spool file irremovable. */
const breakingQueue = definePlugin({
  name: 'test/irremovable-spool-queue',
  options: {},
  setup: () => ({
    hooks: {
      queue: async (_ctx, msg) => {
        await makeIrremovable(await msg.bodyPath())
        return accept()
      },
    },
  }),
})

describe('a spool file that cannot be removed', () => {
  let srv: TestServer
  const unhandled: unknown[] = []
  const onUnhandled = (e: unknown) => unhandled.push(e)
  before(async () => {
    process.on('unhandledRejection', onUnhandled)
    srv = await startTestServer({
      plugins: [acceptAllRecipients(), breakingQueue()],
      memoryQueue: false,
      spoolMemoryThreshold: 1024,
      logLevel: 6,
    })
  })
  after(async () => {
    process.off('unhandledRejection', onUnhandled)
    await srv.close()
  })

  test('after the message: its one reply, a log line, and the session goes on', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<a@remote.test>', 250)
    await c.send('RCPT TO:<u@local.test>', 250)
    await c.send('DATA', 354)
    c.write(`Subject: t\r\n\r\n${'body line\r\n'.repeat(200)}.\r\n`)
    await c.expect(/^250 2\.0\.0 Queued as /)
    // The next reply is NOOP's own: no stray 451, no close.
    await c.send('NOOP', /^250 /)
    await c.send('MAIL FROM:<a@remote.test>', /^250 /)
    await c.send('QUIT', /^221 /)
    assert.ok(
      srv.logs.some((e) => e.level <= 3 && /spool cleanup failed/.test(e.message)),
      'the failure is logged as an error',
    )
  })

  test('a client that leaves mid-message: no unhandled rejection, the server still serves', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<a@remote.test>', 250)
    await c.send('RCPT TO:<u@local.test>', 250)
    await c.send('DATA', 354)
    const before = new Set(await readdir(srv.spoolDir))
    c.write(`Subject: t\r\n\r\n${'body line\r\n'.repeat(3000)}`) // past the threshold and one block
    let file: string | undefined
    for (let i = 0; i < 200 && file === undefined; i++) {
      file = (await readdir(srv.spoolDir)).find((f) => !before.has(f))
      if (file === undefined) await sleep(10)
    }
    assert.ok(file !== undefined, 'the body went to a spool file')
    await makeIrremovable(join(srv.spoolDir, file))
    const failures = () => srv.logs.filter((e) => e.level <= 3 && /spool cleanup failed/.test(e.message)).length
    const earlier = failures()
    c.destroy()
    for (let i = 0; i < 200 && failures() === earlier; i++) await sleep(10)
    assert.equal(failures(), earlier + 1)
    assert.deepEqual(unhandled, [])
    const next = await srv.connect()
    await next.expect(220)
    await next.send('QUIT', 221)
  })
})
