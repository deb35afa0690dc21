/**
 * Shared by the milter plugin's tests (not shipped): a test server with the milter pointed at a
 * scripted milter, and one-call SMTP sessions and messages.
 */
import {
  type FakeAnswer,
  type FakeConnection,
  type FakeMilter,
  type Received,
  milterReply as r,
  startFakeMilter,
} from '../../../test/peers/fake-milter.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { pass } from '../../host/verdict.ts'
import { formatAddress } from '../../protocol/envelope.ts'
import { acceptAllRecipients, type TestServer, type TestServerOptions, withTestServer } from '../../testing/index.ts'
import milter from './index.ts'

export const CONTENT = 'Subject: hello\r\nFrom: <s@sender.test>\r\nX-Old: a\r\nX-Old: b\r\n\r\nbody line\r\n'

export async function withMilter(
  answer: (c: Received, conn: FakeConnection) => FakeAnswer | Promise<FakeAnswer>,
  run: (srv: TestServer, fake: FakeMilter) => Promise<void>,
  opts: {
    negotiate?: { actions?: number; protocol?: number }
    options?: Record<string, string>
    server?: TestServerOptions
  } = {},
) {
  const fake = await startFakeMilter({
    reply: answer,
    ...(opts.negotiate === undefined
      ? {}
      : {
          negotiate: (o) => [r.negotiate(6, opts.negotiate?.actions ?? o.actions, opts.negotiate?.protocol ?? 0)],
        }),
  })
  try {
    await withTestServer(
      {
        ...opts.server,
        plugins: [
          milter({ name: 'fake', socket: fake.socket, ...opts.options }),
          acceptAllRecipients(),
          recordEnvelope(),
          ...(opts.server?.plugins ?? []),
        ],
      },
      (srv) => run(srv, fake),
    )
  } finally {
    await fake.close()
  }
}

export const cont = (): FakeAnswer => [r.continue()]

export async function session(srv: TestServer) {
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO client.test', 250)
  return c
}

export async function sendMessage(srv: TestServer, to: readonly string[] = ['u1@local.test'], content = CONTENT) {
  const c = await session(srv)
  await c.send('MAIL FROM:<s@sender.test> SIZE=100 BODY=8BITMIME', 250)
  for (const t of to) await c.send(`RCPT TO:<${t}> NOTIFY=NEVER`, /^[245]/)
  await c.send('DATA', 354)
  c.write(`${content}.\r\n`)
  const reply = await c.reply(30_000)
  await c.quit()
  return reply
}

/** Records the envelope the queue will get, DSN parameters included. */
export const envelopeSeen: { from: string; to: string[] }[] = []
export const recordEnvelope = definePlugin({
  name: 'test/record-envelope',
  options: {},
  setup: () => ({
    hooks: {
      queuePre: (ctx) => {
        envelopeSeen.push({
          from: formatAddress(ctx.transaction.mailFrom.address),
          to: ctx.transaction.recipients.map((x) => `${formatAddress(x.address)} ${x.params.notify?.join(',') ?? '-'}`),
        })
        return pass()
      },
    },
  }),
})
