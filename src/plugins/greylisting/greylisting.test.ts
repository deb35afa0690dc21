import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { type FakeClock, fakeClock } from '../../clock/index.ts'
import { GeoIpCountry, P0f, type P0fFingerprint } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { pass } from '../../host/verdict.ts'
import type { Store } from '../../store/index.ts'
import type { SmtpTestClient } from '../../testing/client.ts'
import { startTestServer, type TestServer, type TestServerOptions } from '../../testing/index.ts'
import whitelist from '../connect/whitelist.ts'
import { failingStore, storeKinds, TestStores } from '../state-test-support.ts'
import { acceptRcpt } from '../test-support.ts'
import greylisting from './index.ts'

const stores = new TestStores()
after(() => stores.close())

const MINUTE = 60_000
const DEFERRED = '450 4.7.1 This mail is temporarily denied\r\n'
/** 127.0.0.1 as qpsmtpd keys it (Net::IP intip). */
const LOOPBACK = '2130706433'

type Options = Parameters<typeof greylisting>[0]

/** A server with greylisting (and whatever comes before it), on a fake clock. */
async function server(
  options: Options,
  extra: { store?: Store; clock?: FakeClock; before?: TestServerOptions['plugins'] } & TestServerOptions = {},
): Promise<{ srv: TestServer; clock: FakeClock }> {
  const clock = extra.clock ?? fakeClock()
  const srv = await startTestServer({
    ...extra,
    clock,
    plugins: [...(extra.before ?? []), greylisting(options), acceptRcpt()],
  })
  return { srv, clock }
}

async function greeted(srv: TestServer): Promise<SmtpTestClient> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO client.test', 250)
  return c
}

/** One transaction; the replies to MAIL, each RCPT and DATA (as far as it got). */
async function attempt(srv: TestServer, from: string, to: readonly string[]): Promise<string[]> {
  const c = await greeted(srv)
  const replies: string[] = []
  try {
    const mail = (await c.send(`MAIL FROM:<${from}>`, /^/))!.raw
    replies.push(mail)
    if (!mail.startsWith('250')) return replies
    let accepted = 0
    for (const r of to) {
      const reply = (await c.send(`RCPT TO:<${r}>`, /^/))!.raw
      replies.push(reply)
      if (reply.startsWith('250')) accepted++
    }
    if (accepted === 0) return replies
    const data = (await c.send('DATA', /^/))!.raw
    replies.push(data)
    if (!data.startsWith('354')) return replies
    c.write('Subject: greylisting\r\n\r\nhello\r\n.\r\n')
    replies.push((await c.reply()).raw)
    return replies
  } finally {
    await c.quit()
  }
}

const delivered = (replies: readonly string[]) => replies.at(-1)?.startsWith('250 ') === true && replies.length > 2

for (const kind of storeKinds) {
  describe(`greylisting on the ${kind} store`, () => {
    it('defers a new client, again while it retries too soon, accepts it after black_timeout, then knows it', async () => {
      const store = await stores.open(kind, fakeClock())
      const { srv, clock } = await server({ black_timeout: 300 }, { store, clock: fakeClock() })
      try {
        assert.deepEqual(await attempt(srv, 'a@sender.test', ['u@mx.test']), [DEFERRED])
        await clock.advance(2 * MINUTE)
        assert.deepEqual(await attempt(srv, 'a@sender.test', ['u@mx.test']), [DEFERRED], 'retried too soon')
        await clock.advance(4 * MINUTE)
        assert.ok(delivered(await attempt(srv, 'a@sender.test', ['u@mx.test'])), 'retried after black_timeout')
        assert.ok(delivered(await attempt(srv, 'other@elsewhere.test', ['v@mx.test'])), 'the client is known now')
        assert.equal(srv.queued.length, 2)
        assert.match((await store.get(`greylisting:triplet:${LOOPBACK}`))!, /^\d+:1:1:1$/)
      } finally {
        await srv.close()
        await store.close()
      }
    })

    it('triplets of client, sender and recipient; a client that retried properly is not delayed again', async () => {
      const store = await stores.open(kind, fakeClock())
      const clock = fakeClock()
      const opts = { sender: true, recipient: true, black_timeout: 300 }
      const { srv } = await server(opts, { store, clock })
      try {
        const first = await attempt(srv, 'a@sender.test', ['u@mx.test', 'w@mx.test'])
        assert.deepEqual(first.slice(1, 3), [DEFERRED, DEFERRED], 'each recipient is a triplet')
        await clock.advance(6 * MINUTE)
        assert.ok(delivered(await attempt(srv, 'a@sender.test', ['u@mx.test'])))
        assert.ok(
          delivered(await attempt(srv, 'new@other.test', ['x@mx.test'])),
          'another sender and recipient from the same client pass at once',
        )
        assert.equal(await store.get(`greylisting:triplet:${LOOPBACK}:new@other.test:x@mx.test`), undefined)
        assert.match((await store.get(`greylisting:client:${LOOPBACK}`))!, /^\d+:1$/)
      } finally {
        await srv.close()
        await store.close()
      }
    })
  })
}

describe('greylisting', () => {
  it('auto_whitelist_clients 0: every new triplet waits, even from a client that retried before', async () => {
    const { srv, clock } = await server({ sender: true, black_timeout: 300, auto_whitelist_clients: 0 })
    try {
      assert.deepEqual(await attempt(srv, 'a@sender.test', ['u@mx.test']), [DEFERRED])
      await clock.advance(6 * MINUTE)
      assert.ok(delivered(await attempt(srv, 'a@sender.test', ['u@mx.test'])))
      assert.deepEqual(await attempt(srv, 'b@sender.test', ['u@mx.test']), [DEFERRED])
    } finally {
      await srv.close()
    }
  })

  it('auto_whitelist_clients 2: the client is known after its second proper retry', async () => {
    const { srv, clock } = await server({ sender: true, black_timeout: 300, auto_whitelist_clients: 2 })
    try {
      for (const sender of ['a@s.test', 'b@s.test']) {
        assert.deepEqual(await attempt(srv, sender, ['u@mx.test']), [DEFERRED])
        await clock.advance(6 * MINUTE)
        assert.ok(delivered(await attempt(srv, sender, ['u@mx.test'])))
      }
      assert.ok(delivered(await attempt(srv, 'c@s.test', ['u@mx.test'])))
    } finally {
      await srv.close()
    }
  })

  it('a retry after grey_timeout starts over; a white triplet unused for white_timeout is forgotten', async () => {
    const { srv, clock } = await server({ black_timeout: 60, grey_timeout: 600, white_timeout: 3600 })
    try {
      assert.deepEqual(await attempt(srv, 'a@s.test', ['u@mx.test']), [DEFERRED])
      await clock.advance(11 * MINUTE)
      assert.deepEqual(await attempt(srv, 'a@s.test', ['u@mx.test']), [DEFERRED], 'too late: a first sighting again')
      await clock.advance(2 * MINUTE)
      assert.ok(delivered(await attempt(srv, 'a@s.test', ['u@mx.test'])))
      await clock.advance(50 * MINUTE)
      assert.ok(delivered(await attempt(srv, 'a@s.test', ['u@mx.test'])), 'white, and renewed by this delivery')
      await clock.advance(50 * MINUTE)
      assert.ok(delivered(await attempt(srv, 'a@s.test', ['u@mx.test'])), 'renewed 50 minutes ago')
      await clock.advance(61 * MINUTE)
      assert.deepEqual(await attempt(srv, 'a@s.test', ['u@mx.test']), [DEFERRED], 'white_timeout passed')
    } finally {
      await srv.close()
    }
  })

  it('reject 0 (and mode testonly) records and logs but lets the mail through', async () => {
    for (const opts of [{ reject: false }, { mode: 'testonly' }] as const) {
      const { srv, clock } = await server({ ...opts, black_timeout: 300 })
      try {
        assert.ok(delivered(await attempt(srv, 'a@s.test', ['u@mx.test'])))
        await clock.advance(6 * MINUTE)
        assert.ok(delivered(await attempt(srv, 'a@s.test', ['u@mx.test'])))
        assert.match((await srv.store.get(`greylisting:triplet:${LOOPBACK}`))!, /:1:0:1$/, 'seeded: now white')
      } finally {
        await srv.close()
      }
    }
  })

  it('deny_late defers at DATA; a null sender in recipient mode is deferred at DATA too', async () => {
    const late = await server({ deny_late: true })
    try {
      const replies = await attempt(late.srv, 'a@s.test', ['u@mx.test', 'w@mx.test'])
      assert.deepEqual(
        replies.slice(0, 3).map((r) => r.slice(0, 3)),
        ['250', '250', '250'],
      )
      assert.equal(replies[3], '451 4.7.1 This mail is temporarily denied\r\n')
    } finally {
      await late.srv.close()
    }
    const probe = await server({ recipient: true })
    try {
      const replies = await attempt(probe.srv, '', ['u@mx.test'])
      assert.deepEqual(
        replies.slice(0, 2).map((r) => r.slice(0, 3)),
        ['250', '250'],
        'a callout probe succeeds',
      )
      assert.equal(replies[2], '451 4.7.1 This mail is temporarily denied\r\n')
    } finally {
      await probe.srv.close()
    }
  })

  it('a message to whitelisted recipients only is not held at DATA', async () => {
    const { srv } = await server(
      { recipient: true },
      { before: [whitelist()], config: { whitelistrcpt: ['postmaster@mx.test'] } },
    )
    try {
      const replies = await attempt(srv, '', ['postmaster@mx.test'])
      assert.ok(delivered(replies), replies.join(''))
    } finally {
      await srv.close()
    }
  })

  const setNotes = (fp: P0fFingerprint | undefined, country: string | undefined, relay = false) =>
    definePlugin({
      name: 'test/fingerprint',
      options: {},
      setup: () => ({
        hooks: {
          connect: (ctx) => {
            ctx.connection.notes.set(P0f, fp)
            ctx.connection.notes.set(GeoIpCountry, country)
            ctx.connection.relayClient = relay
            return pass()
          },
        },
      }),
    })()

  it('p0f: only clients whose fingerprint matches are greylisted; without p0f info nobody is', async () => {
    // Fingerprints as ident/p0f writes them from p0f 3 (its own test runs the real p0f with greylisting).
    const cases = [
      { fp: { genre: 'Windows 7 or 8', detail: '7 or 8' }, greylisted: true },
      { fp: { genre: 'Linux 3.11 and newer', detail: '3.11 and newer', distance: 9 }, greylisted: true },
      { fp: { genre: 'Linux 3.11 and newer', detail: '3.11 and newer', distance: 2, uptime: 500 }, greylisted: false },
      { fp: undefined, greylisted: false },
    ]
    for (const { fp, greylisted } of cases) {
      const { srv } = await server({ p0f: 'genre,windows,distance,5' }, { before: [setNotes(fp, undefined)] })
      try {
        const replies = await attempt(srv, 'a@s.test', ['u@mx.test'])
        assert.equal(replies[0] === DEFERRED, greylisted, JSON.stringify(fp))
      } finally {
        await srv.close()
      }
    }
  })

  it('geoip countries, relay clients and hosts in greylist_exclude_files are not greylisted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-greylist-'))
    try {
      writeFileSync(join(dir, 'exclude'), '# our partners\n127.0.0.0/8 # loopback\n/\\.partner\\.test$/\n')
      writeFileSync(join(dir, 'none'), '192.0.2.1\nmx.example\n')
      const variants = [
        { opts: { geoip: ['de', 'FR'] }, notes: setNotes(undefined, 'DE'), files: [], greylisted: false },
        { opts: { geoip: ['de', 'FR'] }, notes: setNotes(undefined, 'US'), files: [], greylisted: true },
        { opts: {}, notes: setNotes(undefined, undefined, true), files: [], greylisted: false },
        { opts: {}, notes: setNotes(undefined, undefined), files: ['exclude'], greylisted: false },
        { opts: {}, notes: setNotes(undefined, undefined), files: ['none'], greylisted: true },
      ]
      for (const v of variants) {
        const { srv } = await server(v.opts, {
          before: [v.notes],
          config: { greylist_exclude_files: v.files.map((f) => join(dir, f)) },
        })
        try {
          const replies = await attempt(srv, 'a@s.test', ['u@mx.test'])
          assert.equal(replies[0] === DEFERRED, v.greylisted, JSON.stringify(v.opts) + v.files.join())
        } finally {
          await srv.close()
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('the denysoft_greylist file sets defaults the plugin line overrides; a bad line stops the start', async () => {
    const { srv, clock } = await server(
      { black_timeout: 120 },
      { config: { denysoft_greylist: ['black_timeout 3600', 'sender 1'] } },
    )
    try {
      assert.deepEqual(await attempt(srv, 'a@s.test', ['u@mx.test']), [DEFERRED])
      await clock.advance(3 * MINUTE)
      assert.ok(delivered(await attempt(srv, 'a@s.test', ['u@mx.test'])), 'black_timeout from the plugin line')
      assert.ok(await srv.store.get(`greylisting:triplet:${LOOPBACK}:a@s.test`), 'sender from the file')
    } finally {
      await srv.close()
    }
    await assert.rejects(server({}, { config: { denysoft_greylist: ['black_timeout soon'] } }), (e: Error) => {
      assert.match(e.message, /denysoft_greylist>?:1: black_timeout: expected a number/)
      return true
    })
    await assert.rejects(server({ black_timeout: 20_000 }), /grey_timeout \(12000\) must be longer than black_timeout/)
    await assert.rejects(
      server({ remote_ip: false }),
      /enable one of remote_ip, sender or recipient/,
      'a triplet of nothing',
    )
  })

  it('per_recipient: a recipient with its own denysoft_greylist settings is judged by them', async () => {
    const own = definePlugin({
      name: 'test/user-config',
      options: {},
      setup: () => ({
        hooks: {
          userConfig: (address, key) =>
            address === 'vip@mx.test' && key === 'denysoft_greylist' ? ['reject 0'] : undefined,
        },
      }),
    })()
    const { srv } = await server({ per_recipient: true }, { before: [own] })
    try {
      const replies = await attempt(srv, 'a@s.test', ['u@mx.test', 'vip@mx.test'])
      assert.equal(replies[1], DEFERRED)
      assert.match(replies[2]!, /^250 /)
    } finally {
      await srv.close()
    }
  })

  it('a record qpsmtpd wrote (imported) is honoured; garbage under the key is a first sighting', async () => {
    const clock = fakeClock()
    const { srv } = await server({}, { clock })
    try {
      const now = Math.floor(clock.now() / 1000)
      await srv.store.set(`greylisting:triplet:${LOOPBACK}`, `${now - 86_400}:1:3:7`)
      assert.ok(delivered(await attempt(srv, 'a@s.test', ['u@mx.test'])))
      await srv.store.set(`greylisting:triplet:${LOOPBACK}`, 'not a record')
      assert.deepEqual(await attempt(srv, 'a@s.test', ['u@mx.test']), [DEFERRED])
    } finally {
      await srv.close()
    }
  })

  it('db_dir keeps the triplets in an SQLite file of its own in that directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-greylist-db-'))
    try {
      const { srv } = await server({ db_dir: dir })
      try {
        assert.deepEqual(await attempt(srv, 'a@s.test', ['u@mx.test']), [DEFERRED])
        assert.ok(existsSync(join(dir, 'qtsmtpd-greylisting.db')))
        assert.equal(await srv.store.get(`greylisting:triplet:${LOOPBACK}`), undefined, 'not in the process store')
      } finally {
        await srv.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a store that cannot answer: on_error pass lets mail through, on_error defer answers 451 4.3.0', async () => {
    const down = failingStore()
    const passing = await server({}, { store: down })
    try {
      assert.ok(delivered(await attempt(passing.srv, 'a@s.test', ['u@mx.test'])))
    } finally {
      await passing.srv.close()
    }
    const deferring = await server({ on_error: 'defer' }, { store: down })
    try {
      assert.deepEqual(await attempt(deferring.srv, 'a@s.test', ['u@mx.test']), [
        '451 4.3.0 greylisting unavailable, try again later\r\n',
      ])
    } finally {
      await deferring.srv.close()
    }
  })
})
