/**
 * A milter's SMFIR_QUARANTINE (and default_action quarantine) with each `quarantine` setting:
 * refused with 554 (the default), held in the quarantine queue (`queue/quarantine` with
 * `marked_only`, as Postfix's hold queue) while other mail is delivered, or delivered with an
 * X-Quarantine field. A message marked for the hold queue that no quarantine queue took is
 * deferred, never delivered.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type FakeMilterScript, milterReply as r, startFakeMilter } from '../../../test/peers/fake-milter.ts'
import type { PluginChoice } from '../../host/define-plugin.ts'
import { acceptAllRecipients, type TestServer, withTestServer } from '../../testing/index.ts'
import quarantineQueue from '../queue/quarantine.ts'
import { sendMailSession } from '../test-support.ts'
import milter from './index.ts'

let base: string
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'qtsmtpd-milter-quarantine-'))
})
after(() => rm(base, { recursive: true, force: true }))

const quarantining: FakeMilterScript = {
  reply: (c) => (c.letter === 'E' ? [r.quarantine('Infected (Test.EICAR)'), r.continue()] : [r.continue()]),
}

async function serve(
  script: FakeMilterScript,
  plugins: (socket: string) => PluginChoice[],
  run: (srv: TestServer) => Promise<void>,
) {
  const fake = await startFakeMilter(script)
  try {
    await withTestServer({ plugins: [...plugins(fake.socket), acceptAllRecipients()] }, run)
  } finally {
    await fake.close()
  }
}

const send = (srv: TestServer, subject = 'hello') =>
  sendMailSession(srv, 's@sender.test', ['u@local.test'], `Subject: ${subject}\r\n\r\nbody\r\n`)

describe('milter quarantine', () => {
  it('by default the message is refused: 554 5.7.1 Message quarantined', async () => {
    await serve(
      quarantining,
      (socket) => [milter({ name: 'clamav', socket })],
      async (srv) => {
        const reply = await send(srv)
        assert.equal(reply.raw, '554 5.7.1 Message quarantined\r\n')
        assert.equal(srv.queued.length, 0)
        assert.ok(srv.logs.some((l) => /quarantined: milter clamav: Infected \(Test\.EICAR\)/.test(l.message)))
      },
    )
  })

  it('hold: queue/quarantine with marked_only keeps it (250), with the reason; other mail is delivered', async () => {
    const dir = join(base, 'hold')
    let quarantine = true
    await serve(
      {
        reply: (c) =>
          c.letter === 'E' && quarantine ? [r.quarantine('Infected (Test.EICAR)'), r.continue()] : [r.continue()],
      },
      (socket) => [quarantineQueue({ dir, marked_only: true }), milter({ name: 'clamav', socket, quarantine: 'hold' })],
      async (srv) => {
        const held = await send(srv, 'held')
        assert.match(held.raw, /^250 2\.0\.0 Quarantined as /)
        quarantine = false
        assert.match((await send(srv, 'clean')).raw, /^250 2\.0\.0 Queued as /)
        assert.equal(srv.queued.length, 1)
        assert.match(srv.queued[0]?.text ?? '', /Subject: clean/)
        const [day] = await readdir(dir)
        const [file] = await readdir(join(dir, day as string))
        const stored = await readFile(join(dir, day as string, file as string), 'utf8')
        assert.match(
          stored,
          /^X-Envelope-From: <s@sender\.test>\r\nX-Envelope-To: <u@local\.test>\r\nX-Quarantine-Reason: milter clamav: Infected \(Test\.EICAR\)\r\nReceived: [\s\S]*Subject: held\r\n\r\nbody\r\n$/,
        )
      },
    )
  })

  it('hold without a quarantine queue before the milter line: deferred (451), never delivered', async () => {
    await serve(
      quarantining,
      (socket) => [milter({ name: 'clamav', socket, quarantine: 'hold' })],
      async (srv) => {
        const reply = await send(srv)
        assert.equal(reply.raw, '451 4.3.0 Message held for quarantine; try again later\r\n')
        assert.equal(srv.queued.length, 0)
        assert.ok(srv.logs.some((l) => /no queue\/quarantine with marked_only took it/.test(l.message)))
      },
    )
  })

  it('header: delivered with an X-Quarantine field', async () => {
    await serve(
      quarantining,
      (socket) => [milter({ name: 'clamav', socket, quarantine: 'header' })],
      async (srv) => {
        assert.equal((await send(srv)).code, 250)
        assert.match(srv.queued[0]?.text ?? '', /\r\nX-Quarantine: milter clamav: Infected \(Test\.EICAR\)\r\n\r\nbody/)
      },
    )
  })

  it('default_action quarantine: a failed milter holds every message of the connection', async () => {
    const dir = join(base, 'failed')
    await serve(
      { reply: (c) => (c.letter === 'E' ? 'die' : [r.continue()]) },
      (socket) => [
        quarantineQueue({ dir, marked_only: true }),
        milter({ name: 'clamav', socket, quarantine: 'hold', default_action: 'quarantine' }),
      ],
      async (srv) => {
        assert.match((await send(srv)).raw, /^250 2\.0\.0 Quarantined as /)
        assert.equal(srv.queued.length, 0)
        const [day] = await readdir(dir)
        const [file] = await readdir(join(dir, day as string))
        assert.match(
          await readFile(join(dir, day as string, file as string), 'utf8'),
          /X-Quarantine-Reason: milter clamav: milter failed: closed\r\n/,
        )
      },
    )
  })
})
