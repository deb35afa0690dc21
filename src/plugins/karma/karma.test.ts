import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { type FakeClock, fakeClock } from '../../clock/index.ts'
import { adjustKarma, KarmaHistory } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { opt } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import type { Store } from '../../store/index.ts'
import { startTestServer, type TestServer, type TestServerOptions } from '../../testing/index.ts'
import earlytalker from '../connect/earlytalker.ts'
import naughty from '../naughty.ts'
import { failingStore, storeKinds, TestStores } from '../state-test-support.ts'
import { acceptRcpt, summaryLine } from '../test-support.ts'
import { captureKarma, karmaTable, listKarma, releaseKarma, showKarma } from './admin.ts'
import karma from './index.ts'

const stores = new TestStores()
after(() => stores.close())

const DAY = 86_400_000
/** 127.0.0.1 as qpsmtpd keys it. */
const LOOPBACK = '2130706433'

/** Adds `points` of karma at connect, as dnsbl, spamassassin or whitelist would. */
const judge = definePlugin({
  name: 'test/judge',
  options: { points: opt.number({ default: 0 }) },
  setup: ({ options }) => ({
    hooks: {
      connect: (ctx) => {
        adjustKarma(ctx, options.points)
        return pass()
      },
    },
  }),
})

/** Records what karma told the later plugins. */
const seen: Array<number | undefined> = []
const historyReader = definePlugin({
  name: 'test/history-reader',
  options: {},
  setup: () => ({
    hooks: {
      connect: (ctx) => {
        seen.push(ctx.connection.notes.get(KarmaHistory))
        return pass()
      },
    },
  }),
})

type KarmaOptions = Parameters<typeof karma>[0]

async function server(
  options: KarmaOptions,
  points: number,
  extra: TestServerOptions & { store?: Store; clock?: FakeClock } = {},
): Promise<TestServer> {
  return startTestServer({
    ...extra,
    plugins: [karma(options), judge({ points }), historyReader(), ...(extra.plugins ?? []), acceptRcpt()],
  })
}

/** Connects, sends one message when greeted, quits; the greeting and the last reply. */
async function visit(srv: TestServer, rcpts = ['u@mx.test']): Promise<string[]> {
  const summaries = srv.logs.filter((l) => l.message.startsWith('summary ')).length
  const c = await srv.connect()
  const replies = [(await c.reply()).raw]
  if (replies[0]!.startsWith('220')) {
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<a@s.test>', 250)
    for (const r of rcpts) replies.push((await c.send(`RCPT TO:<${r}>`, /^/))!.raw)
    await c.quit()
  } else await c.closed()
  // The record is written by the disconnect hook, after the last reply; the summary line follows it.
  await summaryLine(srv, summaries + 1)
  return replies
}

for (const kind of storeKinds) {
  describe(`karma on the ${kind} store`, () => {
    it('a naughty connection sends the client to the penalty box; it is refused until the penalty ends', async () => {
      const clock = fakeClock()
      const store = await stores.open(kind, clock)
      const naughtySrv = await server({ reject: '1' }, -3, { store, clock })
      try {
        assert.match((await visit(naughtySrv))[0]!, /^220 /)
        assert.equal(await store.get(`karma:${LOOPBACK}`), `${Math.floor(clock.now() / 1000)}:1:0:1`)
      } finally {
        await naughtySrv.close()
      }
      const srv = await server({ reject: '1' }, 0, { store, clock })
      try {
        assert.deepEqual(await visit(srv), ['554 5.7.1 You were naughty. You cannot connect for 1.00 more days.\r\n'])
        await clock.advance(DAY / 2)
        assert.deepEqual(await visit(srv), ['554 5.7.1 You were naughty. You cannot connect for 0.50 more days.\r\n'])
        await clock.advance(DAY / 2)
        assert.match((await visit(srv))[0]!, /^220 /, 'the penalty is over')
        assert.match((await store.get(`karma:${LOOPBACK}`))!, /^\d+:1:0:3$/, 'refused connections count')
      } finally {
        await srv.close()
        await store.close()
      }
    })

    it('nice connections build a history that later plugins read', async () => {
      const clock = fakeClock()
      const store = await stores.open(kind, clock)
      const srv = await server({}, 3, { store, clock })
      try {
        seen.length = 0
        for (let i = 0; i < 3; i++) await visit(srv)
        assert.deepEqual(seen, [0, 1, 2])
        assert.equal(await store.get(`karma:${LOOPBACK}`), '0:0:3:3')
      } finally {
        await srv.close()
        await store.close()
      }
    })
  })
}

describe('karma', () => {
  it('reject naughty (the default) leaves the refusal to the naughty plugin', async () => {
    const clock = fakeClock()
    const first = await server({}, -3, { clock })
    try {
      await visit(first)
      const srv = await server({}, 0, { clock, store: first.store, plugins: [naughty()] })
      try {
        const replies = await visit(srv)
        assert.match(replies[0]!, /^220 /)
        assert.equal(replies[1], '550 5.7.1 (karma) You were naughty. You cannot connect for 1.00 more days.\r\n')
      } finally {
        await srv.close()
      }
    } finally {
      await first.close()
    }
  })

  it('repeat offenders without a nice connection get a day more per naughty one', async () => {
    const clock = fakeClock()
    const srv = await server({}, -3, { clock })
    try {
      const now = Math.floor(clock.now() / 1000)
      await srv.store.set(`karma:${LOOPBACK}`, `${now - 10 * 86_400}:6:0:6`)
      await visit(srv)
      assert.equal(await srv.store.get(`karma:${LOOPBACK}`), `${now + 7 * 86_400}:7:0:7`)
      const left = (await showKarma(srv.store.scope('karma'), '127.0.0.1')).record
      assert.equal(left.naughty, 7)
    } finally {
      await srv.close()
    }
  })

  it('negative 2 tolerates one naughty connection more; neutral connections only count', async () => {
    const clock = fakeClock()
    const srv = await server({ negative: 2, reject: '1' }, -3, { clock })
    try {
      await srv.store.set(`karma:${LOOPBACK}`, '0:0:1:1')
      await visit(srv)
      assert.equal(await srv.store.get(`karma:${LOOPBACK}`), '0:1:1:2', 'history 0: not penalized')
      await visit(srv)
      assert.equal(await srv.store.get(`karma:${LOOPBACK}`), '0:2:1:3', 'history -1: not yet')
      await visit(srv)
      assert.equal(await srv.store.get(`karma:${LOOPBACK}`), `${Math.floor(clock.now() / 1000)}:3:1:4`, 'history -2')
    } finally {
      await srv.close()
    }
  })

  it('a client without good history or karma gives one recipient per transaction (452 4.5.3)', async () => {
    const unknown = await server({}, 0)
    try {
      const replies = await visit(unknown, ['a@mx.test', 'b@mx.test'])
      assert.match(replies[1]!, /^250 /)
      assert.equal(
        replies[2],
        '452 4.5.3 Too many recipients for karma 0 (history 0); send the others in another transaction\r\n',
      )
    } finally {
      await unknown.close()
    }
    for (const [options, points] of [
      [{}, 1],
      [{ limit_recipients: 0 }, 0],
      [{ limit_recipients: 2 }, 0],
    ] as const) {
      const srv = await server(options, points)
      try {
        const replies = await visit(srv, ['a@mx.test', 'b@mx.test'])
        assert.match(replies[2]!, /^250 /, JSON.stringify(options))
      } finally {
        await srv.close()
      }
    }
  })

  it('very bad karma (below -4) is refused at DATA; karma_tlds and bare paths cost points', async () => {
    const srv = await server({ reject: '1', limit_recipients: 0 }, 0, {
      config: { karma_tlds: ['jp:-4', 'example:+2'] },
    })
    try {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      await c.send('MAIL FROM:a@spam.jp', 250)
      await c.send('RCPT TO:<u@mx.test>', 250)
      await c.send('DATA', '554 5.7.1 very bad karma: -6\r\n')
      await c.quit()
    } finally {
      await srv.close()
    }
    await assert.rejects(server({}, 0, { config: { karma_tlds: ['jp -4'] } }), /karma_tlds>?:1: expected "tld:±n"/)
  })

  it('the store cannot answer: the client is served without history (on_error pass) or deferred', async () => {
    seen.length = 0
    const srv = await server({}, 0, { store: failingStore() })
    try {
      assert.match((await visit(srv))[0]!, /^220 /)
      assert.deepEqual(seen, [undefined], 'no history: hosts_allow and earlytalker use their own settings')
    } finally {
      await srv.close()
    }
    const strict = await server({ on_error: 'defer' }, 0, { store: failingStore() })
    try {
      assert.deepEqual(await visit(strict), ['421 4.3.0 karma unavailable, try again later\r\n'])
    } finally {
      await strict.close()
    }
  })

  it('earlytalker does not keep a client with a history above 5 waiting', async () => {
    const srv = await startTestServer({ plugins: [karma(), earlytalker({ wait: 20 })] })
    try {
      await srv.store.set(`karma:${LOOPBACK}`, '0:0:6:6')
      const c = await srv.connect()
      await c.expect(220, 5000)
      await c.quit()
      assert.match(await summaryLine(srv), /earlytalker:skip\(karma history 6\)|karma history 6/)
    } finally {
      await srv.close()
    }
  })

  it('karma_tool: list, search, capture and release', async () => {
    const clock = fakeClock()
    const srv = await server({ reject: '1' }, 0, { clock })
    try {
      const store = srv.store.scope('karma')
      await store.set('3221225985', '0:2:5:9')
      await store.set('42540766411282592856903984951653826561', '0:0:1:1')
      await store.set('not-an-address', '0:1:1:1')
      const now = Math.floor(clock.now() / 1000)
      await captureKarma(store, '127.0.0.1', now, DAY)
      assert.deepEqual(await visit(srv), ['554 5.7.1 You were naughty. You cannot connect for 1.00 more days.\r\n'])
      const all = []
      for await (const e of listKarma(store)) all.push(e)
      assert.deepEqual(all.map((e) => e.address).sort(), ['127.0.0.1', '192.0.2.1', '2001:db8::1'])
      const both = []
      for await (const e of listKarma(store, 'both')) both.push(e.address)
      assert.deepEqual(both, ['192.0.2.1'])
      assert.equal(
        karmaTable(
          all.sort((a, b) => a.address.localeCompare(b.address)),
          () => 'Thu Jan  1 00:00',
        ),
        [
          'IP address   Penalty since     Naughty  Nice  Connects',
          '127.0.0.1    Thu Jan  1 00:00        1     0         1',
          '192.0.2.1                            2     5         9',
          '2001:db8::1                          0     1         1',
          '3 addresses; 3 naughty, 6 nice, 11 connects',
          '',
        ].join('\n'),
      )
      await releaseKarma(store, '127.0.0.1', DAY)
      assert.match((await visit(srv))[0]!, /^220 /)
      await assert.rejects(captureKarma(store, 'mx.example', now, DAY), /not an IP address: mx.example/)
    } finally {
      await srv.close()
    }
  })
})
