/**
 * dataPost plugins that declare `concurrent` run at the same time, and the message, the reply
 * and the log come out as if they had run one after another in configuration order. Proven
 * without clocks: a plugin that waits for its neighbour to start would wait forever if they ran
 * in turn.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type DataPostHook, definePlugin, pass, reject } from '../../src/index.ts'
import { plainMessage, sendMailSession, summaryLine } from '../../src/plugins/test-support.ts'
import { acceptAllRecipients, withTestServer } from '../../src/testing/index.ts'

/** A latch one plugin opens and another waits for. */
function latch() {
  let open = () => {}
  const opened = new Promise<void>((r) => {
    open = r
  })
  return { open, opened }
}

function plugin(name: string, dataPost: DataPostHook, opts: { concurrent?: boolean; onFailure?: 'pass' } = {}) {
  return definePlugin({
    name,
    options: {},
    concurrent: opts.concurrent ?? true,
    ...(opts.onFailure === undefined ? {} : { onFailure: opts.onFailure }),
    timeoutMs: 5_000,
    setup: () => ({ hooks: { dataPost } }),
  })()
}

const MESSAGE = plainMessage('hello\r\n')

describe('concurrent dataPost plugins', () => {
  it('run at the same time; headers and results come out in configuration order', async () => {
    const bStarted = latch()
    const aDone = latch()
    const first = plugin('test/a', async (ctx, msg) => {
      await bStarted.opened // would never open if b ran only after a
      msg.headers.add('X-A', 'first in config, done last')
      msg.headers.prepend('X-Top-A', 'a')
      ctx.result('pass', 'a done')
      aDone.open()
      return pass()
    })
    const second = plugin('test/b', async (ctx, msg) => {
      bStarted.open()
      msg.headers.add('X-B', 'second in config, done first')
      msg.headers.prepend('X-Top-B', 'b')
      ctx.result('pass', 'b done')
      return pass()
    })
    const after = plugin(
      'test/c',
      (ctx, msg) => {
        // A plugin after the group sees the group's edits.
        ctx.result('info', `saw ${msg.headers.get('X-A').length + msg.headers.get('X-B').length} fields`)
        return pass()
      },
      { concurrent: false },
    )
    await withTestServer({ plugins: [acceptAllRecipients(), first, second, after] }, async (srv) => {
      assert.equal((await sendMailSession(srv, 'a@sender.test', ['b@local.test'], MESSAGE)).code, 250)
      const text = srv.queued[0]?.text ?? ''
      assert.ok(text.startsWith('X-Top-B: b\r\nX-Top-A: a\r\nReceived: '), text.slice(0, 60))
      assert.ok(
        text.endsWith(
          `${MESSAGE.slice(0, MESSAGE.indexOf('\r\n\r\n') + 2)}X-A: first in config, done last\r\nX-B: second in config, done first\r\n\r\nhello\r\n`,
        ),
      )
      assert.match(
        await summaryLine(srv),
        /results=\[test\/a:pass\(a done\) test\/b:pass\(b done\) test\/c:info\(saw 2 fields\)\]/,
      )
    })
  })

  it('the first refusal in configuration order wins, and later plugins are aborted and leave nothing', async () => {
    const aborted: string[] = []
    const bRefused = latch()
    const first = plugin('test/a', async (ctx) => {
      await bRefused.opened
      ctx.result('fail', 'a refuses')
      return reject({ code: 554, enhanced: '5.7.1', text: 'refused by a' })
    })
    const second = plugin('test/b', async (ctx, msg) => {
      msg.headers.add('X-B', 'b')
      ctx.result('fail', 'b refuses')
      bRefused.open()
      return reject({ code: 550, enhanced: '5.7.1', text: 'refused by b' })
    })
    const slow = plugin('test/slow', async (ctx, msg) => {
      msg.headers.add('X-Slow', 'never')
      ctx.result('pass', 'never shown')
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }))
      aborted.push(String(ctx.signal.reason))
      return pass()
    })
    await withTestServer({ plugins: [acceptAllRecipients(), first, second, slow] }, async (srv) => {
      const r = await sendMailSession(srv, 'a@sender.test', ['b@local.test'], MESSAGE)
      assert.equal(r.raw, '554 5.7.1 refused by a\r\n')
      assert.deepEqual(aborted, ['Error: plugin test/a decided the message'])
      const summary = await summaryLine(srv)
      assert.match(summary, /results=\[test\/a:fail\(a refuses\)\]/)
      assert.match(srv.logs.find((e) => e.message.startsWith('refused cmd=DATA'))?.message ?? '', /plugin=test\/a/)
    })
  })

  it('a failing plugin follows its onFailure policy in its turn; body and envelope edits are refused', async () => {
    const broken = plugin(
      'test/broken',
      async (_ctx, msg) => {
        msg.headers.add('X-Broken', 'kept, as when plugins run in turn')
        throw new Error('scanner bug')
      },
      { onFailure: 'pass' },
    )
    const fine = plugin('test/fine', async (_ctx, msg) => {
      msg.headers.add('X-Fine', 'yes')
      return pass()
    })
    await withTestServer({ plugins: [acceptAllRecipients(), broken, fine] }, async (srv) => {
      assert.equal((await sendMailSession(srv, 'a@sender.test', ['b@local.test'], MESSAGE)).code, 250)
      assert.match(srv.queued[0]?.text ?? '', /\r\nX-Broken: kept, as when plugins run in turn\r\nX-Fine: yes\r\n\r\n/)
    })
    for (const [label, misuse] of [
      ['replaceBody', (_ctx, msg) => msg.replaceBody('new body\r\n').then(() => pass())],
      ['addRecipient', (ctx) => (ctx.transaction.addRecipient('x@local.test'), pass())],
      ['a header with a bare LF', (_ctx, msg) => (msg.headers.add('X-Bad', 'a\nBcc: victim@example.org'), pass())],
    ] as const satisfies readonly (readonly [string, DataPostHook])[])
      await withTestServer({ plugins: [acceptAllRecipients(), plugin('test/misuse', misuse), fine] }, async (srv) => {
        const r = await sendMailSession(srv, 'a@sender.test', ['b@local.test'], MESSAGE)
        assert.equal(r.raw, '451 4.3.0 Temporary failure, please try again later\r\n', label)
        assert.equal(srv.queued.length, 0)
      })
  })
})
