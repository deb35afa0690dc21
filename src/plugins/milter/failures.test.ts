/**
 * A milter that fails us, through real SMTP sessions: an action it did not negotiate, malformed
 * and oversized packets, a bad reply code, too many changes, a milter that accepts and never
 * answers, one that dies in the middle of a message, one that is not there. Each ends in its
 * default_action (tempfail → 451 by default), is logged and counted, and no message is lost:
 * the client either gets a 4xx/5xx or the message is stored exactly, without half the changes.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type FakeAnswer,
  type FakeMilter,
  type FakeMilterScript,
  milterReply as r,
  startFakeMilter,
} from '../../../test/peers/fake-milter.ts'
import { Action, Protocol } from '../../clients/milter/index.ts'
import type { PluginChoice } from '../../host/define-plugin.ts'
import type { SmtpTestClient } from '../../testing/client.ts'
import { acceptAllRecipients, type TestServer, withTestServer } from '../../testing/index.ts'
import milter from './index.ts'

const CONTENT = 'Subject: hello\r\n\r\nbody\r\n'

async function withFailing(
  script: FakeMilterScript,
  options: Record<string, string>,
  run: (srv: TestServer, fake: FakeMilter) => Promise<void>,
  extra: PluginChoice[] = [],
) {
  const fake = await startFakeMilter(script)
  try {
    await withTestServer(
      {
        plugins: [
          ...extra,
          milter({
            name: 'flaky',
            socket: fake.socket,
            command_timeout: '400ms',
            content_timeout: '400ms',
            ...options,
          }),
          acceptAllRecipients(),
        ],
      },
      (srv) => run(srv, fake),
    )
  } finally {
    await fake.close()
  }
}

const at =
  (letter: string, answer: FakeAnswer) =>
  (c: { letter: string }): FakeAnswer =>
    c.letter === letter ? answer : [r.continue()]

async function greeted(srv: TestServer): Promise<SmtpTestClient> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO client.test', 250)
  return c
}

async function message(c: SmtpTestClient, expected: number | string | RegExp) {
  await c.send('MAIL FROM:<s@sender.test>', 250)
  await c.send('RCPT TO:<u@local.test>', 250)
  await c.send('DATA', 354)
  c.write(`${CONTENT}.\r\n`)
  return c.expect(expected, 10_000)
}

const logged = (srv: TestServer, pattern: RegExp) =>
  assert.ok(
    srv.logs.some((l) => pattern.test(l.message)),
    `no log line matches ${pattern}: ${srv.logs.map((l) => l.message).join('\n')}`,
  )

const failures = (srv: TestServer, error: string) =>
  srv.metrics.value('qtsmtpd_milter_failures_total', { milter: 'flaky', error })

const TEMPFAIL = '451 4.7.1 Service unavailable - try again later'

describe('milter failures end in default_action', () => {
  it('an action it did not negotiate: 451 (tempfail, the default), logged; the refusal stands for the connection', async () => {
    await withFailing(
      {
        negotiate: () => [r.negotiate(6, Action.addHeaders, 0)],
        reply: at('E', [r.addHeader('X-Partial', 'yes'), r.changeHeader(1, 'Subject', 'changed'), r.continue()]),
      },
      {},
      async (srv) => {
        const c = await greeted(srv)
        await message(c, TEMPFAIL)
        await c.send('MAIL FROM:<s@sender.test>', TEMPFAIL)
        await c.quit()
        assert.equal(srv.queued.length, 0)
        logged(
          srv,
          /milter flaky: milter flaky sent "m" without negotiating action 0x10 \(at content\); default_action tempfail/,
        )
        assert.equal(failures(srv, 'unnegotiated'), 1)
      },
    )
  })

  it('default_action accept: the message goes on unchanged, none of the changes before the failure applied', async () => {
    await withFailing(
      {
        negotiate: () => [r.negotiate(6, Action.addHeaders, 0)],
        reply: at('E', [r.addHeader('X-Partial', 'yes'), r.changeHeader(1, 'Subject', 'changed'), r.continue()]),
      },
      { default_action: 'accept' },
      async (srv) => {
        const c = await greeted(srv)
        await message(c, 250)
        await message(c, 250)
        await c.quit()
        assert.equal(srv.queued.length, 2)
        for (const q of srv.queued) assert.match(q.text, /\r\nSubject: hello\r\n\r\nbody\r\n$/)
        assert.doesNotMatch(srv.queued[0]?.text ?? '', /X-Partial/)
      },
    )
  })

  const broken = [
    { name: 'a packet of length 0', packet: Buffer.alloc(4), error: 'malformed' },
    { name: 'a packet longer than max_packet_size', packet: Buffer.from([0, 0x20, 0, 1, 0x68]), error: 'oversize' },
    { name: 'a reply followed by data', packet: Buffer.from([0, 0, 0, 3, 0x63, 0x78, 0x79]), error: 'malformed' },
    { name: 'an unknown reply', packet: Buffer.from([0, 0, 0, 1, 0x7a]), error: 'unexpected' },
    { name: 'a reply code that is not 4xx or 5xx', packet: r.replyCode('250 2.0.0 fine'), error: 'malformed' },
  ] as const
  for (const b of broken)
    it(`${b.name} at RCPT, default_action reject: 550 5.5.0 for that command and the rest`, async () => {
      await withFailing({ reply: at('R', [b.packet]) }, { default_action: 'reject' }, async (srv) => {
        const c = await greeted(srv)
        await c.send('MAIL FROM:<s@sender.test>', 250)
        await c.send('RCPT TO:<u@local.test>', '550 5.5.0 Service unavailable')
        await c.send('RCPT TO:<v@local.test>', '550 5.5.0 Service unavailable')
        await c.quit()
        assert.equal(failures(srv, b.error), 1)
        logged(srv, /milter flaky: .*\(at rcpt\); default_action reject/)
      })
    })

  it('more header and envelope changes than max_edits_size: a failure', async () => {
    const big = 'x'.repeat(600)
    await withFailing(
      { reply: at('E', [r.addHeader('X-A', big), r.addHeader('X-B', big), r.continue()]) },
      { max_edits_size: '1024' },
      async (srv) => {
        const c = await greeted(srv)
        await message(c, TEMPFAIL)
        await c.quit()
        assert.equal(failures(srv, 'oversize'), 1)
      },
    )
  })

  it('a milter that accepts the connection and never answers: 421 at the greeting after command_timeout', async () => {
    await withFailing({ negotiate: () => 'silent' }, {}, async (srv) => {
      const c = await srv.connect()
      await c.expect('421 4.7.1 Service unavailable - try again later', 10_000)
      await c.closed()
      assert.equal(failures(srv, 'timeout'), 1)
      logged(srv, /no negotiation reply from milter flaky .* within 400 ms \(at connect\); default_action tempfail/)
    })
  })

  it('silent at end of message: 451 after content_timeout; with accept, the message is stored', async () => {
    await withFailing({ reply: at('E', 'silent') }, {}, async (srv) => {
      const c = await greeted(srv)
      await message(c, TEMPFAIL)
      await c.quit()
      assert.equal(srv.queued.length, 0)
      assert.equal(failures(srv, 'timeout'), 1)
    })
    await withFailing({ reply: at('E', 'silent') }, { default_action: 'accept' }, async (srv) => {
      const c = await greeted(srv)
      await message(c, 250)
      await c.quit()
      assert.equal(srv.queued.length, 1)
    })
  })

  it('stops reading the body (no reply per chunk): our writes wait and time out; the body is never buffered whole', async () => {
    const body = `${'x'.repeat(78)}\r\n`.repeat(250_000)
    await withFailing(
      { negotiate: () => [r.negotiate(6, 0, Protocol.noBodyReply)], reply: at('B', 'stall') },
      {},
      async (srv) => {
        const c = await greeted(srv)
        await c.send('MAIL FROM:<s@sender.test>', 250)
        await c.send('RCPT TO:<u@local.test>', 250)
        await c.send('DATA', 354)
        c.write(`Subject: big\r\n\r\n${body}.\r\n`)
        await c.expect(TEMPFAIL, 20_000)
        await c.quit()
        logged(srv, /milter flaky read nothing of "B" for 400 ms \(at content\)/)
      },
    )
  })

  it('dies in the middle of the body: 451, nothing stored; the next connection gets a new milter connection', async () => {
    let connections = 0
    await withFailing(
      { reply: (c) => (c.letter === 'B' && ++connections === 1 ? 'die' : [r.continue()]) },
      {},
      async (srv, fake) => {
        const c = await greeted(srv)
        await message(c, TEMPFAIL)
        await c.quit()
        assert.equal(srv.queued.length, 0)
        assert.equal(failures(srv, 'closed'), 1)
        const again = await greeted(srv)
        await message(again, 250)
        await again.quit()
        assert.equal(srv.queued.length, 1)
        assert.equal(fake.connections.length, 2)
      },
    )
  })

  it('nothing listening: 421 at the greeting (tempfail); with accept, mail flows without it', async () => {
    const gone = await startFakeMilter()
    const socket = gone.socket
    await gone.close()
    for (const [policy, greeting] of [
      ['tempfail', '421 4.7.1 Service unavailable - try again later'],
      ['accept', 220],
    ] as const) {
      await withTestServer(
        { plugins: [milter({ name: 'flaky', socket, default_action: policy }), acceptAllRecipients()] },
        async (srv) => {
          const c = await srv.connect()
          await c.expect(greeting)
          if (policy === 'accept') {
            await c.send('EHLO client.test', 250)
            await message(c, 250)
            await c.quit()
          }
          assert.equal(failures(srv, 'connect'), 1)
          logged(srv, /connect to milter flaky/)
        },
      )
    }
  })
})
