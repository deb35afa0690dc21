/**
 * milter through real SMTP sessions against a scripted milter: what it is sent at each stage
 * (macros included), each decision as the client sees it, and every modification as the queue
 * stores it. Failures: failures.test.ts; the real filters: opendkim, clamav-milter,
 * spamass-milter and rspamd tests beside this one; configuration: config.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type FakeAnswer, milterReply as r, startFakeMilter } from '../../../test/peers/fake-milter.ts'
import { SmtpTestClient } from '../../testing/client.ts'
import { acceptAllRecipients, withTestServer } from '../../testing/index.ts'
import type { QueuedMessage } from '../../testing/memory-queue.ts'
import milter from './index.ts'
import { CONTENT, cont, envelopeSeen, sendMessage, session, withMilter } from './test-support.ts'

describe('milter: what the milter is told', () => {
  it('every stage in order, with Postfix macros, ESMTP arguments, headers as received and the body', async () => {
    await withMilter(cont, async (srv, fake) => {
      const reply = await sendMessage(srv)
      assert.equal(reply.code, 250)
      const conn = await fake.connected()
      await conn.closed
      assert.deepEqual(conn.letters(), ['O', 'C', 'H', 'M', 'R', 'T', 'L', 'L', 'L', 'L', 'N', 'B', 'E', 'Q'])
      const id = srv.queued[0]?.id as string
      assert.deepEqual(conn.macros('C'), {
        j: 'mx.test',
        '{daemon_name}': 'mx.test',
        '{daemon_addr}': '127.0.0.1',
        v: `qtsmtpd ${conn.macros('C').v?.split(' ')[1]}`,
        _: 'unknown [127.0.0.1]',
      })
      assert.deepEqual(conn.macros('M'), {
        i: id,
        '{mail_addr}': 's@sender.test',
        '{mail_host}': 'sender.test',
        '{mail_mailer}': 'smtp',
      })
      assert.deepEqual(conn.macros('R'), {
        i: id,
        '{rcpt_addr}': 'u1@local.test',
        '{rcpt_host}': 'local.test',
        '{rcpt_mailer}': 'smtp',
      })
      assert.deepEqual(conn.macros('T'), { i: id })
      assert.deepEqual(conn.macros('N'), { i: id })
      assert.deepEqual(conn.macros('E'), { i: id })
      const find = (l: string) => conn.received.filter((x) => x.letter === l)
      assert.deepEqual(find('C')[0]?.strings[0], '[127.0.0.1]')
      assert.deepEqual(find('H')[0]?.strings, ['client.test'])
      assert.deepEqual(find('M')[0]?.strings, ['<s@sender.test>', 'SIZE=100', 'BODY=8BITMIME'])
      assert.deepEqual(find('R')[0]?.strings, ['<u1@local.test>', 'NOTIFY=NEVER'])
      assert.deepEqual(
        find('L').map((x) => x.strings),
        [
          ['Subject', 'hello'],
          ['From', '<s@sender.test>'],
          ['X-Old', 'a'],
          ['X-Old', 'b'],
        ],
        'our own Received field is not shown',
      )
      assert.equal(find('B')[0]?.data.toString(), 'body line\r\n')
    })
  })
})

describe('milter: decisions at each stage, as the client sees them', () => {
  it('connect: reject is 554 5.7.1 and the end; tempfail 421 4.7.1', async () => {
    await withMilter(
      (c) => [c.letter === 'C' ? r.reject() : r.continue()],
      async (srv) => {
        const c = await srv.connect()
        await c.expect('554 5.7.1 Command rejected')
        await c.closed()
      },
    )
    await withMilter(
      (c) => [c.letter === 'C' ? r.tempfail() : r.continue()],
      async (srv) => {
        const c = await srv.connect()
        await c.expect('421 4.7.1 Service unavailable - try again later')
        await c.closed()
      },
    )
  })

  it('HELO refused: the refusal stands for every later command, as in Postfix', async () => {
    await withMilter(
      (c) => [c.letter === 'H' ? r.reject() : r.continue()],
      async (srv, fake) => {
        const c = await srv.connect()
        await c.expect(220)
        await c.send('EHLO client.test', '550 5.7.1 Command rejected')
        await c.send('HELO client.test', '550 5.7.1 Command rejected')
        await c.send('MAIL FROM:<s@sender.test>', /^503 |^550 5\.7\.1 Command rejected/)
        await c.quit()
        const conn = await fake.connected()
        await conn.closed
        assert.deepEqual(conn.letters(), ['O', 'C', 'H', 'Q'], 'the milter hears nothing more')
      },
    )
  })

  it('MAIL tempfailed: 451 4.7.1, the milter gets an abort, the next MAIL is asked again', async () => {
    let mails = 0
    await withMilter(
      (c) => [c.letter === 'M' && ++mails === 1 ? r.tempfail() : r.continue()],
      async (srv, fake) => {
        const c = await session(srv)
        await c.send('MAIL FROM:<s@sender.test>', '451 4.7.1 Service unavailable - try again later')
        await c.send('MAIL FROM:<s@sender.test>', 250)
        await c.quit()
        const conn = await fake.connected()
        await conn.closed
        assert.deepEqual(conn.letters(), ['O', 'C', 'H', 'M', 'A', 'M', 'A', 'Q'])
      },
    )
  })

  it('RCPT: each recipient on its own: one refused, one deferred, one accepted and delivered', async () => {
    const answers: Record<string, FakeAnswer> = {
      '<bad@local.test>': [r.reject()],
      '<later@local.test>': [r.replyCode('452-4.2.2 Mailbox full\r\n452 4.2.2 try again tomorrow')],
    }
    await withMilter(
      (c) => (c.letter === 'R' ? (answers[c.strings[0] as string] ?? cont()) : cont()),
      async (srv) => {
        const c = await session(srv)
        await c.send('MAIL FROM:<s@sender.test>', 250)
        await c.send('RCPT TO:<bad@local.test>', '550 5.7.1 Command rejected')
        const later = await c.send('RCPT TO:<later@local.test>', 452)
        assert.equal(later?.raw, '452-4.2.2 Mailbox full\r\n452 4.2.2 try again tomorrow\r\n')
        await c.send('RCPT TO:<good@local.test>', 250)
        await c.send('DATA', 354)
        c.write(`${CONTENT}.\r\n`)
        await c.expect(250)
        await c.quit()
        assert.deepEqual(srv.queued[0]?.to, ['good@local.test'])
      },
    )
  })

  it('DATA refused with a reply code of its own; 421 from the milter closes the session', async () => {
    await withMilter(
      (c) => [c.letter === 'T' ? r.replyCode('554 5.7.0 Not today %% sorry') : r.continue()],
      async (srv) => {
        const c = await session(srv)
        await c.send('MAIL FROM:<s@sender.test>', 250)
        await c.send('RCPT TO:<u@local.test>', 250)
        await c.send('DATA', '554 5.7.0 Not today % sorry')
        await c.quit()
      },
    )
    await withMilter(
      (c) => [c.letter === 'M' ? r.replyCode('421 4.3.2 Going down') : r.continue()],
      async (srv) => {
        const c = await session(srv)
        await c.send('MAIL FROM:<s@sender.test>', '421 4.3.2 Going down')
        await c.closed()
      },
    )
  })

  it('end of message refused: the client gets the reply, nothing is queued', async () => {
    await withMilter(
      (c) => [c.letter === 'E' ? r.replyCode('550 5.7.1 Spam detected') : r.continue()],
      async (srv) => {
        const reply = await sendMessage(srv)
        assert.equal(reply.raw, '550 5.7.1 Spam detected\r\n')
        assert.equal(srv.queued.length, 0)
      },
    )
  })

  it('accept at connect: the milter hears no more of the connection; mail flows', async () => {
    await withMilter(
      (c) => [c.letter === 'C' ? r.accept() : r.continue()],
      async (srv, fake) => {
        assert.equal((await sendMessage(srv)).code, 250)
        const conn = await fake.connected()
        await conn.closed
        assert.deepEqual(conn.letters(), ['O', 'C', 'Q'])
        assert.equal(srv.queued.length, 1)
      },
    )
  })

  it('accept at MAIL: no more filtering of this message (an abort), and the recipient still needs rcpt plugins', async () => {
    await withMilter(
      (c) => [c.letter === 'M' ? r.accept() : r.continue()],
      async (srv, fake) => {
        assert.equal((await sendMessage(srv)).code, 250)
        const conn = await fake.connected()
        await conn.closed
        assert.deepEqual(conn.letters(), ['O', 'C', 'H', 'M', 'A', 'Q'])
      },
    )
    // Without a recipient plugin, the milter's accept does not accept the recipient.
    const fake = await startFakeMilter({ reply: (c) => [c.letter === 'R' ? r.accept() : r.continue()] })
    try {
      await withTestServer({ plugins: [milter({ name: 'fake', socket: fake.socket })] }, async (srv) => {
        const c = await session(srv)
        await c.send('MAIL FROM:<s@sender.test>', 250)
        await c.send('RCPT TO:<u@elsewhere.test>', /^550 5\.7\.1 /)
        await c.quit()
      })
    } finally {
      await fake.close()
    }
  })

  it('discard at RCPT, or at end of message: 250 to the client, delivered nowhere', async () => {
    for (const at of ['R', 'E']) {
      await withMilter(
        (c) => [c.letter === at ? r.discard() : r.continue()],
        async (srv, fake) => {
          const reply = await sendMessage(srv, ['u1@local.test', 'u2@local.test'])
          assert.equal(reply.code, 250)
          assert.equal(srv.queued.length, 0)
          const conn = await fake.connected()
          await conn.closed
          assert.ok(
            !conn.letters().includes(at === 'R' ? 'T' : 'X'),
            'after a discard at RCPT the milter hears no more',
          )
          assert.ok(srv.logs.some((l) => /accepted and discarded/.test(l.message)))
        },
      )
    }
  })

  it('an unknown command goes to the milter, whose refusal answers it', async () => {
    await withMilter(
      (c) => [c.letter === 'U' ? r.reject() : r.continue()],
      async (srv, fake) => {
        const c = await session(srv)
        await c.send('XFOO bar baz', '550 5.7.1 Command rejected')
        await c.quit()
        const conn = await fake.connected()
        await conn.closed
        assert.deepEqual(conn.received.find((x) => x.letter === 'U')?.strings, ['XFOO bar baz'])
      },
    )
  })

  it('a skip after the first body chunk: the rest of the body is not sent', async () => {
    const body = `${'x'.repeat(998)}\r\n`.repeat(200)
    await withMilter(
      (c) => [c.letter === 'B' ? r.skip() : r.continue()],
      async (srv, fake) => {
        assert.equal((await sendMessage(srv, ['u@local.test'], `Subject: big\r\n\r\n${body}`)).code, 250)
        const conn = await fake.connected()
        await conn.closed
        const chunks = conn.received.filter((x) => x.letter === 'B')
        assert.equal(chunks.length, 1)
        assert.ok((chunks[0]?.data.length ?? 0) <= 65_535)
        assert.equal(srv.queued[0]?.text.endsWith(`\r\n\r\n${body}`), true, 'the message is stored whole')
      },
    )
  })

  it('the milter on an IPv6 connection gets family 6 and the address', async () => {
    await withMilter(
      cont,
      async (srv, fake) => {
        const c = await SmtpTestClient.connect(srv.port, '::1')
        await c.expect(220)
        await c.quit()
        const conn = await fake.connected()
        await conn.closed
        const connect = conn.received.find((x) => x.letter === 'C')?.data as Buffer
        assert.equal(connect.toString('latin1', 0, 6), '[::1]\0')
        assert.equal(connect.toString('latin1', 6, 7), '6')
        assert.equal(connect.toString('latin1', 9), '::1\0')
        assert.equal(conn.macros('C')._, 'unknown [::1]')
      },
      { server: { listeners: [{ host: '::1', port: 0, role: 'smtp' }] } },
    )
  })
})

describe('milter: every modification, as the queue stores it', () => {
  it('headers added, inserted, changed, removed; the body replaced; recipients added and removed; the sender changed', async () => {
    envelopeSeen.length = 0
    await withMilter(
      (c) =>
        c.letter === 'E'
          ? [
              r.addHeader('X-Added', 'one\n\ttwo'),
              r.insertHeader(0, 'X-Top', 'first'),
              r.changeHeader(2, 'X-Old', 'B2'),
              r.changeHeader(1, 'X-Old', ''),
              r.changeHeader(1, 'X-Missing', 'added'),
              r.replaceBody('new\n'),
              r.replaceBody('body\n'),
              r.addRecipient('<new@local.test>'),
              r.addRecipientWithArgs('<dsn@local.test>', 'NOTIFY=SUCCESS'),
              r.removeRecipient('<u1@local.test>'),
              r.changeSender('<bounce@sender.test>'),
              r.continue(),
            ]
          : cont(),
      async (srv) => {
        const reply = await sendMessage(srv, ['u1@local.test', 'u2@local.test'])
        assert.equal(reply.code, 250)
        const q = srv.queued[0] as QueuedMessage
        assert.equal(q.from, 'bounce@sender.test')
        assert.deepEqual(q.to, ['u2@local.test', 'new@local.test', 'dsn@local.test'])
        assert.deepEqual(envelopeSeen[0]?.to, ['u2@local.test NEVER', 'new@local.test -', 'dsn@local.test SUCCESS'])
        assert.match(
          q.text,
          /^X-Top: first\r\nReceived: from client\.test [\s\S]*?\r\nSubject: hello\r\nFrom: <s@sender\.test>\r\nX-Old: B2\r\nX-Added: one\r\n\ttwo\r\nX-Missing: added\r\n\r\nnew\r\nbody\r\n$/,
        )
      },
      { server: { plugins: [] } },
    )
  })

  it("several milters in a chain: the second sees the first one's changes, each is its own instance", async () => {
    const first = await startFakeMilter({
      reply: (c) => (c.letter === 'E' ? [r.addHeader('X-First', 'yes'), r.continue()] : cont()),
    })
    const second = await startFakeMilter({
      reply: (c) => (c.letter === 'E' ? [r.addHeader('X-Second', 'yes'), r.continue()] : cont()),
    })
    try {
      await withTestServer(
        {
          plugins: [
            milter({ name: 'one', socket: first.socket }),
            { ...milter({ name: 'two', socket: second.socket }), instance: '2' },
            acceptAllRecipients(),
          ],
        },
        async (srv) => {
          assert.equal((await sendMessage(srv)).code, 250)
          const conn = await second.connected()
          await conn.closed
          assert.ok(conn.received.some((x) => x.letter === 'L' && x.strings[0] === 'X-First'))
          assert.match(srv.queued[0]?.text ?? '', /X-First: yes\r\nX-Second: yes\r\n\r\n/)
        },
      )
    } finally {
      await first.close()
      await second.close()
    }
  })
})
