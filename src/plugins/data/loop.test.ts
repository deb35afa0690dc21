import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { openSession, startTestServer, withTestServer } from '../../testing/index.ts'
import { sendMail } from '../test-support.ts'

const hops = (received: number, deliveredTo: number) =>
  [
    ...Array.from(
      { length: received },
      (_, i) => `Received: from h${i}.example by h${i + 1}.example; Mon, 1 Jan 2024 00:00:00 +0000`,
    ),
    ...Array.from({ length: deliveredTo }, (_, i) => `Delivered-To: u${i}@example.org`),
    'Subject: loop',
    '',
    'body',
    '',
  ].join('\r\n')

describe('loop (check_loop)', () => {
  it('counts Received and Delivered-To, ours included, against max_hops', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loop-'))
    try {
      await writeFile(join(dir, 'plugins'), 'check_loop 5\nrcpt_ok\n')
      await writeFile(join(dir, 'rcpthosts'), 'local.test\n')
      await withTestServer({ configDir: dir }, async (srv) => {
        const c = await openSession(srv)
        // 2 + 1 + our own Received = 4 hops: fine; one more is 5: refused.
        assert.match((await sendMail(c, 's@example.org', ['u@local.test'], hops(2, 1))).raw, /^250 /)
        assert.equal(
          (await sendMail(c, 's@example.org', ['u@local.test'], hops(2, 2))).raw,
          '554 5.4.6 Too many hops\r\n',
        )
        assert.equal(
          (await sendMail(c, 's@example.org', ['u@local.test'], hops(0, 4))).raw,
          '554 5.4.6 Too many hops\r\n',
        )
        await c.quit()
        assert.equal(srv.queued.length, 1)
      })
      await writeFile(join(dir, 'plugins'), 'loop many\nrcpt_ok\n')
      await assert.rejects(startTestServer({ configDir: dir }), {
        message: `${join(dir, 'plugins')}:1: plugin loop: option "max_hops": expected a number, got "many"`,
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('defaults to 100 hops', async () => {
    const { default: loop } = await import('./loop.ts')
    const { acceptRcpt } = await import('../test-support.ts')
    await withTestServer({ plugins: [loop(), acceptRcpt()] }, async (srv) => {
      const c = await openSession(srv)
      assert.match((await sendMail(c, 's@example.org', ['u@local.test'], hops(49, 49))).raw, /^250 /)
      assert.equal(
        (await sendMail(c, 's@example.org', ['u@local.test'], hops(49, 50))).raw,
        '554 5.4.6 Too many hops\r\n',
      )
      await c.quit()
    })
  })
})
