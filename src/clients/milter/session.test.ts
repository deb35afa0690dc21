/**
 * The milter client against a scripted filter on loopback: negotiation, what the filter's
 * protocol bits change on the wire, modifications in order, and every way a filter can fail us
 * (silence, death, malformed and oversized packets, actions it did not negotiate).
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { type FakeMilterScript, milterReply, startFakeMilter } from '../../../test/peers/fake-milter.ts'
import { Action, allActions, offeredProtocol, Protocol } from './constants.ts'
import { MilterError, type MilterErrorCode } from './errors.ts'
import { MilterSession, type MilterSessionOptions, type ModificationSink } from './session.ts'
import { parseMilterSocket } from './socket-spec.ts'

const opened: MilterSession[] = []
after(() => {
  for (const s of opened) s.destroy()
})

async function open(script: FakeMilterScript, more: Partial<MilterSessionOptions> = {}) {
  const fake = await startFakeMilter(script)
  after(() => fake.close())
  const session = await MilterSession.open({
    target: parseMilterSocket(fake.socket),
    name: 'fake',
    connectTimeoutMs: 2_000,
    commandTimeoutMs: 2_000,
    contentTimeoutMs: 2_000,
    maxPacket: 64 * 1024 + 16,
    macroNames: { connect: ['j', '{daemon_name}'], mail: ['i', '{mail_addr}'], endOfMessage: ['i'] },
    ...more,
  })
  opened.push(session)
  return { fake, session, conn: await fake.connected() }
}

const macros = (values: Record<string, string>) => (name: string) => values[name]

const rejectsWith = (p: Promise<unknown>, code: MilterErrorCode) =>
  assert.rejects(p, (e) => e instanceof MilterError && e.code === code)

const collect = (): ModificationSink & { seen: unknown[]; body: Buffer[] } => {
  const seen: unknown[] = []
  const body: Buffer[] = []
  return {
    seen,
    body,
    modification: (m) => void seen.push(m),
    replaceBody: async (chunk) => void body.push(chunk),
  }
}

describe('milter session: negotiation', () => {
  it('offers version 6, every action, and the protocol bits we implement; keeps what the filter chose', async () => {
    let offer: { version: number; actions: number; protocol: number } | undefined
    const { session } = await open({
      negotiate: (o) => {
        offer = o
        return [milterReply.negotiate(6, Action.addHeaders, Protocol.noHelo | Protocol.rejectedRcpts)]
      },
    })
    assert.deepEqual(offer, { version: 6, actions: allActions, protocol: offeredProtocol[6] })
    assert.equal(offer.protocol & Protocol.rejectedRcpts, 0, 'rejected recipients are never shown: not offered')
    assert.deepEqual(session.negotiated, { version: 6, actions: Action.addHeaders, protocol: Protocol.noHelo })
  })

  it('a newer protocol version, or an action we do not offer, fails the negotiation', async () => {
    await rejectsWith(open({ negotiate: () => [milterReply.negotiate(7, 0, 0)] }), 'negotiation')
    await rejectsWith(open({ negotiate: () => [milterReply.negotiate(6, 0x1000, 0)] }), 'negotiation')
  })

  it('an older protocol version: events it does not define are never sent', async () => {
    const { session, conn } = await open({ negotiate: () => [milterReply.negotiate(2, 0, 0)] })
    assert.equal(session.negotiated.version, 2)
    assert.deepEqual(await session.unknown('XFOO', macros({})), { kind: 'continue' })
    assert.deepEqual(await session.data(macros({ i: 'Q1' })), { kind: 'continue' })
    assert.deepEqual(await session.mail(['<s@x.test>'], macros({ i: 'Q1' })), { kind: 'continue' })
    assert.deepEqual(conn.letters(), ['O', 'M'])
  })

  it("the filter's symbol lists replace the configured macro names of their stage", async () => {
    const { session, conn } = await open({
      negotiate: () => [milterReply.negotiate(6, Action.setSymbolList, 0, [[2, '{auth_authen} {mail_addr}']])],
    })
    assert.deepEqual(session.macroNames('mail'), ['{auth_authen}', '{mail_addr}'])
    assert.deepEqual(session.macroNames('connect'), ['j', '{daemon_name}'])
    await session.mail(['<s@sender.test>'], macros({ i: 'Q1', '{mail_addr}': 's@sender.test' }))
    assert.deepEqual(conn.macros('M'), { '{mail_addr}': 's@sender.test' })
  })
})

describe('milter session: events', () => {
  it('sends macros, then the event, and returns the decision', async () => {
    const { session, conn } = await open({
      reply: (c) => [c.letter === 'M' ? milterReply.reject() : milterReply.continue()],
    })
    const m = macros({ j: 'mx.test', '{daemon_name}': 'mx.test', i: 'Q1', '{mail_addr}': 's@sender.test' })
    assert.deepEqual(await session.connect('client.test', '6', 2525, '::1', m), { kind: 'continue' })
    assert.deepEqual(await session.mail(['<s@sender.test>', 'SIZE=10', 'BODY=8BITMIME'], m), { kind: 'reject' })
    assert.deepEqual(conn.letters(), ['O', 'C', 'M'])
    assert.deepEqual(conn.received[1]?.data.subarray(0, 1).toString(), 'C', 'the macro packet names its command')
    assert.deepEqual(conn.macros('C'), { j: 'mx.test', '{daemon_name}': 'mx.test' })
    const connect = conn.received.find((r) => r.letter === 'C')?.data as Buffer
    assert.deepEqual(connect, Buffer.from('client.test\x006\x09\xdd::1\0', 'latin1'))
    assert.deepEqual(conn.received.find((r) => r.letter === 'M')?.strings, [
      '<s@sender.test>',
      'SIZE=10',
      'BODY=8BITMIME',
    ])
  })

  it('events the filter does not want are not sent, their macros are; no-reply events are not waited for', async () => {
    const { session, conn } = await open({
      negotiate: () => [milterReply.negotiate(6, 0, Protocol.noConnect | Protocol.noMailReply)],
      reply: (c) => (c.letter === 'T' ? [milterReply.continue()] : 'silent'),
    })
    const m = macros({ j: 'mx.test', i: 'Q1' })
    assert.deepEqual(await session.connect('client.test', '4', 25, '192.0.2.1', m), { kind: 'continue' })
    assert.deepEqual(await session.mail(['<s@sender.test>'], m), { kind: 'continue' })
    assert.deepEqual(await session.data(m), { kind: 'continue' })
    assert.deepEqual(conn.letters(), ['O', 'M', 'T'])
    assert.deepEqual(conn.macros('C'), { j: 'mx.test' })
  })

  it('body goes in chunks of at most 65,535 octets; a skip ends it', async () => {
    let chunks = 0
    const { session, conn } = await open({
      reply: (c) => [c.letter === 'B' && ++chunks === 2 ? milterReply.skip() : milterReply.continue()],
    })
    const body = Buffer.alloc(200_000, 'a')
    assert.deepEqual(await session.body(body), { kind: 'skip' })
    assert.equal(session.wantsBody, false)
    assert.deepEqual(await session.body(body), { kind: 'skip' }, 'skipped without sending')
    assert.deepEqual(
      conn.received.filter((r) => r.letter === 'B').map((r) => r.data.length),
      [65_535, 65_535],
    )
    assert.deepEqual(await session.endOfMessage(macros({}), collect()), { kind: 'continue' })
  })

  it('end of message: modifications in order, the replaced body in chunks, then the decision', async () => {
    const { session } = await open({
      reply: (c) =>
        c.letter === 'E'
          ? [
              milterReply.addHeader('X-A', 'one'),
              milterReply.progress(),
              milterReply.replaceBody('new '),
              milterReply.replaceBody('body\r\n'),
              milterReply.removeRecipient('<b@x.test>'),
              milterReply.quarantine('suspicious'),
              milterReply.accept(),
            ]
          : [milterReply.continue()],
    })
    const sink = collect()
    assert.deepEqual(await session.endOfMessage(macros({}), sink), { kind: 'accept' })
    assert.deepEqual(sink.seen, [
      { kind: 'addHeader', name: 'X-A', value: 'one' },
      { kind: 'removeRecipient', address: '<b@x.test>' },
      { kind: 'quarantine', reason: 'suspicious' },
    ])
    assert.equal(Buffer.concat(sink.body).toString(), 'new body\r\n')
  })

  it('a reply code is returned as the filter wrote it', async () => {
    const { session } = await open({ reply: () => [milterReply.replyCode('550-5.7.1 one\r\n550 5.7.1 two')] })
    assert.deepEqual(await session.helo('client.test', macros({})), {
      kind: 'replyCode',
      text: '550-5.7.1 one\r\n550 5.7.1 two',
    })
  })
})

describe('milter session: a filter that fails us ends the connection with an error', () => {
  const failing = [
    {
      name: 'a modification it did not negotiate',
      code: 'unnegotiated',
      negotiate: Action.addHeaders,
      eom: [milterReply.changeHeader(1, 'Subject', 'x'), milterReply.continue()],
    },
    {
      name: 'a modification before end of message',
      code: 'unexpected',
      at: 'M',
      eom: [milterReply.addHeader('X', 'y')],
    },
    { name: 'a packet of length 0', code: 'malformed', eom: [Buffer.alloc(4)] },
    { name: 'an oversized packet', code: 'oversize', eom: [Buffer.from([0, 0x10, 0, 0, 0x63])] },
    { name: 'continue with data', code: 'malformed', eom: [Buffer.from([0, 0, 0, 2, 0x63, 0x78])] },
    { name: 'an unknown reply', code: 'unexpected', eom: [Buffer.from([0, 0, 0, 1, 0x5a])] },
    {
      name: 'a body replaced in two parts with other changes between',
      code: 'unexpected',
      eom: [milterReply.replaceBody('a'), milterReply.addHeader('X', 'y'), milterReply.replaceBody('b')],
    },
    { name: 'silence (no reply within the timeout)', code: 'timeout', eom: 'silent' },
    { name: 'death mid-message', code: 'closed', eom: 'die' },
  ] as const
  for (const f of failing)
    it(f.name, async () => {
      const at = 'at' in f ? f.at : 'E'
      const { session } = await open(
        {
          negotiate: () => [milterReply.negotiate(6, 'negotiate' in f ? f.negotiate : allActions, 0)],
          reply: (c) => (c.letter === at ? f.eom : [milterReply.continue()]),
        },
        { contentTimeoutMs: 300, commandTimeoutMs: 300 },
      )
      const run = at === 'M' ? session.mail(['<s@x.test>'], macros({})) : session.endOfMessage(macros({}), collect())
      await rejectsWith(run, f.code)
      assert.equal(session.usable, false)
      await rejectsWith(session.data(macros({})), f.code)
    })

  it('progress starts a new deadline each time: 1.2 s of work under a 500 ms timeout', async () => {
    const { session } = await open(
      {
        reply: async (c, conn) => {
          if (c.letter !== 'E') return [milterReply.continue()]
          for (let i = 0; i < 6; i++) {
            conn.send(milterReply.progress())
            await new Promise((r) => setTimeout(r, 200))
          }
          return [milterReply.accept()]
        },
      },
      { contentTimeoutMs: 500 },
    )
    assert.deepEqual(await session.endOfMessage(macros({}), collect()), { kind: 'accept' })
  })

  it('an aborted signal gives up at once', async () => {
    const { session } = await open({ reply: () => 'silent' })
    const ac = new AbortController()
    const run = session.data(macros({}), ac.signal)
    ac.abort(new Error('client gone'))
    await rejectsWith(run, 'aborted')
  })

  it('nothing listening: a connect error', async () => {
    const fake = await startFakeMilter()
    const target = parseMilterSocket(fake.socket)
    await fake.close()
    await rejectsWith(
      MilterSession.open({
        target,
        name: 'gone',
        connectTimeoutMs: 1_000,
        commandTimeoutMs: 1_000,
        contentTimeoutMs: 1_000,
        maxPacket: 65_536,
      }),
      'connect',
    )
  })
})
