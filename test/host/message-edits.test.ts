/**
 * The message API through real sessions: what a content plugin (milter, scanners) changes in
 * dataPost and queuePre is exactly what the queue receives; edits outside their hooks fail
 * closed; plugins never reach the spool or the session's state; a message whose recipients were
 * all removed is accepted and stored nowhere. Queue backends against real peers:
 * test/interop/edited-message.test.ts.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { describe, it } from 'node:test'
import type { Message, TxnContext } from '../../src/host/context.ts'
import { definePlugin, type PluginChoice } from '../../src/host/define-plugin.ts'
import type { HookName, Hooks } from '../../src/host/hook-map.ts'
import { accept, pass, type Verdict } from '../../src/host/verdict.ts'
import { retainedBytes } from '../../src/message/test-fixtures.ts'
import { formatAddress } from '../../src/protocol/envelope.ts'
import {
  acceptAllRecipients,
  type TestServer,
  type TestServerOptions,
  withTestServer,
} from '../../src/testing/index.ts'
import { withoutOwnReceived } from '../interop/helpers.ts'

type EditHook = (ctx: TxnContext, msg: Message) => Verdict | undefined | Promise<Verdict | undefined>

/** A plugin running `edit` in `hook`; pass() unless the edit returns a verdict. */
function editing(hook: HookName, edit: EditHook, opts: { timeoutMs?: number; onFailure?: 'pass' } = {}) {
  return definePlugin({
    name: `test/edit-${hook}`,
    options: {},
    ...opts,
    setup: () => ({
      hooks: { [hook]: async (ctx: TxnContext, msg: Message) => (await edit(ctx, msg)) ?? pass() } as Hooks,
    }),
  })()
}

const CONTENT = 'Subject: original\r\nX-Drop: me\r\nFrom: <s@sender.test>\r\n\r\noriginal body\r\n'

async function send(
  srv: TestServer,
  to: readonly string[],
  content = CONTENT,
  from = 's@sender.test',
): Promise<{ code: number; raw: string }> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO client.test', 250)
  await c.send(`MAIL FROM:<${from}>`, 250)
  for (const r of to) await c.send(`RCPT TO:<${r}>`, 250)
  await c.send('DATA', 354)
  c.write(`${content}.\r\n`)
  const r = await c.reply(30_000)
  await c.quit()
  return { code: r.code, raw: r.raw }
}

const serve = (plugins: PluginChoice[], run: (srv: TestServer) => Promise<void>, opts: TestServerOptions = {}) =>
  withTestServer({ plugins: [...plugins, acceptAllRecipients()], ...opts }, run)

describe('a content plugin edits the message and the envelope in dataPost', () => {
  it('the queue receives the edited header section, the new body and the edited envelope, exactly', async () => {
    const seenByQueuePre: string[] = []
    const filter = editing('dataPost', async (ctx, msg) => {
      msg.headers.change('Subject', 0, '[filtered] original')
      msg.headers.insert(1, 'X-Filter', 'ran') // below our Received field
      msg.headers.remove('X-Drop')
      await msg.replaceBody('replaced\nbody\n') // Unix line ends become CRLF
      assert.equal(ctx.transaction.addRecipient('archive@local.test', 'NOTIFY=NEVER'), true)
      assert.equal(
        ctx.transaction.addRecipient('<u1@LOCAL.test>'),
        false,
        'already a recipient (domain case-insensitive)',
      )
      assert.equal(ctx.transaction.removeRecipient('u2@LOCAL.TEST'), 1)
      ctx.transaction.setSender('bounces@sender.test', 'RET=HDRS ENVID=x+2B1')
      return undefined
    })
    const observer = editing('queuePre', (ctx, msg) => {
      seenByQueuePre.push(...ctx.transaction.recipients.map((r) => formatAddress(r.address)), `size=${msg.size}`)
      return undefined
    })
    let envelope: TxnContext['transaction'] | undefined
    const inspect = editing('queue', (ctx) => {
      envelope = ctx.transaction
      return undefined
    })
    await serve([filter, observer, inspect], async (srv) => {
      const r = await send(srv, ['u1@local.test', 'u2@local.test'])
      assert.match(r.raw, /^250 2\.0\.0 Queued as /, srv.logs.map((e) => e.message).join('\n'))
      const [m] = srv.queued
      assert.ok(m)
      const want = 'X-Filter: ran\r\nSubject: [filtered] original\r\nFrom: <s@sender.test>\r\n\r\nreplaced\r\nbody\r\n'
      assert.equal(withoutOwnReceived(m.data).toString(), want)
      assert.equal(m.from, 'bounces@sender.test')
      assert.deepEqual(m.to, ['u1@local.test', 'archive@local.test'])
      assert.deepEqual(seenByQueuePre, ['u1@local.test', 'archive@local.test', `size=${m.data.length}`])
      assert.deepEqual(envelope?.recipients[1]?.params.notify, ['NEVER'])
      assert.equal(envelope?.mailFrom.params.ret, 'HDRS')
      assert.equal(envelope?.mailFrom.params.envid, 'x+1')
      assert.equal(envelope?.mailFrom.params.envidEncoded, 'x+2B1', 'what the next hop gets')
      const log = srv.logs.map((e) => e.message)
      assert.ok(
        log.some((l) =>
          /recipient <archive@local\.test> added, unchecked by rcpt hooks \(plugin edit in dataPost\)/.test(l),
        ),
      )
      assert.ok(log.some((l) => /recipient <u2@local\.test> removed, 2 left/.test(l)))
      assert.ok(log.some((l) => /sender changed to <bounces@sender\.test>/.test(l)))
      assert.ok(
        log.some((l) =>
          /^accepted .* from=<bounces@sender\.test> to=<u1@local\.test> to=<archive@local\.test> /.test(l),
        ),
        'the message log line shows the envelope the queue received',
      )
    })
  })

  it('an unedited message reaches the queue byte for byte', async () => {
    const content = 'Subject: s\r\nX-8bit: caf\xe9\r\n\r\nline\r\n\r\n'
    await serve([editing('dataPost', () => undefined)], async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      await c.send('MAIL FROM:<s@sender.test> BODY=8BITMIME', 250)
      await c.send('RCPT TO:<u@local.test>', 250)
      await c.send('DATA', 354)
      c.write(Buffer.from(`${content}.\r\n`, 'latin1'))
      await c.expect(250)
      await c.quit()
      assert.deepEqual(withoutOwnReceived(srv.queued[0]?.data ?? Buffer.alloc(0)), Buffer.from(content, 'latin1'))
    })
  })

  it('removing every recipient: 250, nothing queued, and a log line says it was discarded', async () => {
    const drop = editing('dataPost', (ctx) => {
      for (const r of ctx.transaction.recipients) ctx.transaction.removeRecipient(formatAddress(r.address))
      return undefined
    })
    await serve([drop], async (srv) => {
      const r = await send(srv, ['u1@local.test', 'u2@local.test'])
      assert.match(r.raw, /^250 2\.0\.0 Queued as \w+\r\n$/)
      assert.equal(srv.queued.length, 0)
      const log = srv.logs.map((e) => e.message)
      assert.ok(log.some((l) => /accepted and discarded: plugins removed every recipient/.test(l)))
      assert.ok(log.some((l) => /^accepted .* from=<s@sender\.test> size=\d+ .* queue=- /.test(l)))
    })
  })

  it('a recipient removed in dataPost can come back in queuePre', async () => {
    const drop = editing('dataPost', (ctx) => void ctx.transaction.removeRecipient('u1@local.test'))
    const restore = editing('queuePre', (ctx) => void ctx.transaction.addRecipient('u1@local.test'))
    await serve([drop, restore], async (srv) => {
      assert.equal((await send(srv, ['u1@local.test'])).code, 250)
      assert.deepEqual(srv.queued[0]?.to, ['u1@local.test'])
    })
  })
})

describe('edits outside their hooks fail closed', () => {
  const cases: { label: string; hook: HookName; edit: EditHook; reply: RegExp; log: RegExp }[] = [
    {
      label: 'a recipient added in the rcpt hook',
      hook: 'rcpt',
      edit: (ctx) => void ctx.transaction.addRecipient('x@local.test'),
      reply: /^451 4\.3\.0 /,
      log: /transaction\.addRecipient is allowed in dataPost and queuePre, not before the end of DATA/,
    },
    {
      label: 'the body replaced in dataHeadersEnd',
      hook: 'dataHeadersEnd',
      edit: async (_ctx, msg) => void (await msg.replaceBody('x\r\n')),
      reply: /^451 4\.3\.0 /,
      log: /msg\.replaceBody is allowed in dataPost and queuePre, not in dataHeadersEnd/,
    },
    {
      label: 'the sender changed in dataHeadersEnd',
      hook: 'dataHeadersEnd',
      edit: (ctx) => void ctx.transaction.setSender('x@sender.test'),
      reply: /^451 4\.3\.0 /,
      log: /transaction\.setSender is allowed in dataPost and queuePre, not in dataHeadersEnd/,
    },
    {
      label: 'a header added by a queue plugin',
      hook: 'queue',
      edit: (_ctx, msg) => void msg.headers.add('X-Late', 'x'),
      reply: /^451 4\.3\.0 /,
      log: /msg\.headers\.add is allowed from dataHeadersEnd to queuePre, not in queue/,
    },
    {
      label: 'a recipient removed by a queue plugin',
      hook: 'queue',
      edit: (ctx) => void ctx.transaction.removeRecipient('u@local.test'),
      reply: /^451 4\.3\.0 /,
      log: /transaction\.removeRecipient is allowed in dataPost and queuePre, not in queue/,
    },
    {
      label: 'an address no client could send',
      hook: 'dataPost',
      edit: (ctx) => void ctx.transaction.addRecipient('bad\r\nRCPT TO:<x@y>'),
      reply: /^451 4\.3\.0 /,
      log: /addRecipient: Bad recipient address syntax/,
    },
    {
      label: 'a parameter that describes the content (BODY=) on a new sender',
      hook: 'dataPost',
      edit: (ctx) => void ctx.transaction.setSender('x@sender.test', 'BODY=8BITMIME'),
      reply: /^451 4\.3\.0 /,
      log: /setSender: Unsupported parameter BODY/,
    },
    {
      label: 'a UTF-8 recipient in a transaction without SMTPUTF8',
      hook: 'dataPost',
      edit: (ctx) => void ctx.transaction.addRecipient('jörg@local.test'),
      reply: /^451 4\.3\.0 /,
      log: /addRecipient: /,
    },
    {
      label: 'a header value that would inject a field',
      hook: 'dataPost',
      edit: (_ctx, msg) => void msg.headers.change('Subject', 0, 'x\r\nBcc: victim@example.com'),
      reply: /^451 4\.3\.0 /,
      log: /header value: CRLF is allowed only as folding/,
    },
  ]
  for (const c of cases) {
    it(c.label, async () => {
      await serve([editing(c.hook, c.edit)], async (srv) => {
        const conn = await srv.connect()
        await conn.expect(220)
        await conn.send('EHLO client.test', 250)
        await conn.send('MAIL FROM:<s@sender.test>', 250)
        await conn.send('RCPT TO:<u@local.test>')
        const rcpt = await conn.reply()
        if (c.hook === 'rcpt') assert.match(rcpt.raw, c.reply)
        else {
          await conn.send('DATA', 354)
          conn.write(`${CONTENT}.\r\n`)
          assert.match((await conn.reply()).raw, c.reply)
        }
        await conn.quit()
        assert.equal(srv.queued.length, 0)
        assert.ok(
          srv.logs.some((e) => c.log.test(e.message)),
          `log: ${srv.logs.map((e) => e.message).join('\n')}`,
        )
      })
    })
  }

  it('queuePost edits are refused and logged, the 250 stands', async () => {
    const late = editing('queuePost', (_ctx, msg) => void msg.headers.add('X-Late', 'x'))
    await serve([late], async (srv) => {
      assert.equal((await send(srv, ['u@local.test'])).code, 250)
      assert.ok(
        srv.logs.some((e) =>
          /msg\.headers\.add is allowed from dataHeadersEnd to queuePre, not in queuePost/.test(e.message),
        ),
      )
    })
  })

  it('a resetTransaction hook cannot edit the finished transaction', async () => {
    const errors: string[] = []
    const late = definePlugin({
      name: 'test/late',
      options: {},
      setup: () => ({
        hooks: {
          resetTransaction: (ctx) => {
            try {
              ctx.transaction?.addRecipient('late@local.test')
            } catch (e) {
              errors.push((e as Error).message)
            }
          },
        },
      }),
    })()
    await serve([late], async (srv) => {
      assert.equal((await send(srv, ['u@local.test'])).code, 250)
      assert.deepEqual(srv.queued[0]?.to, ['u@local.test'])
      assert.ok(
        errors.some((m) => /not after the transaction/.test(m)),
        errors.join(),
      )
    })
  })

  it("a timed-out dataPost plugin's replacement never reaches the queue, and leaves no file", async () => {
    let release = () => {}
    const released = new Promise<void>((r) => {
      release = r
    })
    let late: Promise<unknown> = Promise.resolve()
    const slow = editing(
      'dataPost',
      async (_ctx, msg) => {
        late = msg.replaceBody(
          (async function* () {
            yield Buffer.alloc(300_000, 'x') // past the spool's memory threshold: a file
            await released
            yield Buffer.from('\r\n')
          })(),
        )
        await late
        return undefined
      },
      { timeoutMs: 200, onFailure: 'pass' },
    )
    const queue = editing('queue', async () => {
      release()
      await late.catch(() => {})
      return undefined // on to the memory queue
    })
    await serve([slow, queue], async (srv) => {
      assert.equal((await send(srv, ['u@local.test'])).code, 250)
      assert.equal(withoutOwnReceived(srv.queued[0]?.data ?? Buffer.alloc(0)).toString(), CONTENT)
      await assert.rejects(late, /stopped taking edits/)
      assert.deepEqual(await readdir(srv.spoolDir), [])
    })
  })
})

describe('plugins never reach the spool or the session state', () => {
  it('msg and ctx.transaction are frozen views without write/end/abort/cleanup or spool', async () => {
    const checks: string[] = []
    const probe = editing('dataPost', (ctx, msg) => {
      const m = msg as unknown as Record<string, unknown>
      const t = ctx.transaction as unknown as Record<string, unknown>
      for (const name of ['write', 'end', 'abort', 'cleanup', 'drained', 'spool', 'content'])
        if (name in m || m[name] !== undefined) checks.push(`msg.${name}`)
      for (const name of ['spool', 'message', 'pendingRefusal', 'edits', 'view', 'cleanup', 'recordRecipient'])
        if (name in t || t[name] !== undefined) checks.push(`transaction.${name}`)
      if (!Object.isFrozen(msg) || !Object.isFrozen(msg.headers) || !Object.isFrozen(ctx.transaction))
        checks.push('not frozen')
      assert.throws(() => (ctx.transaction.recipients as unknown as unknown[]).push('x'), TypeError)
      // A copy of the fields: writing into it changes nothing stored.
      const first = msg.headers.fields[1]
      assert.ok(first)
      first.raw.fill(0x41)
      assert.throws(() => (msg.headers.fields as unknown as unknown[]).pop(), TypeError)
      return accept()
    })
    await serve([probe], async (srv) => {
      assert.equal((await send(srv, ['u@local.test'])).code, 250)
      assert.deepEqual(checks, [])
      assert.equal(withoutOwnReceived(srv.queued[0]?.data ?? Buffer.alloc(0)).toString(), CONTENT)
    })
  })
})

describe('a large replacement body', () => {
  it('32 MB streamed in by a plugin pass through the spool within bounded memory, intact', async () => {
    const THRESHOLD = 256 * 1024
    const line = Buffer.from(`${'x'.repeat(78)}\r\n`)
    const chunk = Buffer.concat(Array.from({ length: 800 }, () => line)) // 64,000 octets, never changed
    const CHUNKS = 512
    const expected = createHash('sha256')
    for (let i = 0; i < CHUNKS; i++) expected.update(chunk)
    let baseline = 0
    let peak = 0
    const replace = editing('dataPost', async (_ctx, msg) => {
      baseline = retainedBytes()
      await msg.replaceBody(
        (async function* () {
          for (let i = 0; i < CHUNKS; i++) {
            if (i % 64 === 63) peak = Math.max(peak, retainedBytes())
            yield chunk
          }
        })(),
      )
      return undefined
    })
    let stored = { size: 0, sha256: '' }
    const hashingQueue = editing('queue', async (_ctx, msg) => {
      const hash = createHash('sha256')
      let size = 0
      let bodyStarted = false
      for await (const piece of msg.bodyStream()) {
        bodyStarted = true
        size += (piece as Buffer).length
        hash.update(piece as Buffer)
      }
      assert.ok(bodyStarted)
      stored = { size, sha256: hash.digest('hex') }
      return accept()
    })
    await serve(
      [replace, hashingQueue],
      async (srv) => {
        assert.equal((await send(srv, ['u@local.test'])).code, 250)
      },
      { memoryQueue: false, spoolMemoryThreshold: THRESHOLD },
    )
    assert.deepEqual(stored, { size: CHUNKS * chunk.length, sha256: expected.digest('hex') })
    // Unbounded buffering would hold all 32 MB; the spool holds its threshold, the file stream's
    // buffer (256 KiB) and a chunk in flight.
    const growth = peak - baseline
    assert.ok(growth < 4 * 1024 * 1024, `memory grew by ${Math.round(growth / 1024)} KiB while 32 MB went through`)
  })
})
