/**
 * ident/geoip on MaxMind's public test databases (test/fixtures/maxmind), under the file names
 * geoipupdate gives the real ones. Loopback clients have no location, so the located clients
 * arrive through XCLIENT or the PROXY protocol from a trusted peer, as behind a proxy.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fakeClock } from '../../clock/index.ts'
import { GeoIp, GeoIpCountry, type GeoIpInfo, Karma } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { pass } from '../../host/verdict.ts'
import { SmtpTestClient, startTestServer, type TestServer, type TestServerOptions } from '../../testing/index.ts'
import greylisting from '../greylisting/index.ts'
import { acceptRcpt, plainMessage, sendMail, summaryLine } from '../test-support.ts'
import geoip, { encodedWords, greatCircleKm } from './geoip.ts'

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/maxmind')
const CITY = join(FIXTURES, 'GeoIP2-City-Test.mmdb')
const COUNTRY = join(FIXTURES, 'GeoIP2-Country-Test.mmdb')
const ASN = join(FIXTURES, 'GeoLite2-ASN-Test.mmdb')

const dirs: string[] = []
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
/** A db_dir holding `files` (name → fixture path, or bytes). */
function dbDir(files: Readonly<Record<string, string | Buffer>>): string {
  const d = mkdtempSync(join(tmpdir(), 'qtsmtpd-geoip-'))
  dirs.push(d)
  for (const [name, from] of Object.entries(files)) {
    if (typeof from === 'string') symlinkSync(from, join(d, name))
    else writeFileSync(join(d, name), from)
  }
  return d
}
const ALL = { 'GeoLite2-City.mmdb': CITY, 'GeoLite2-Country.mmdb': COUNTRY, 'GeoLite2-ASN.mmdb': ASN }

/** What the connect hooks left in the GeoIp keys, and the karma, as the rcpt hook sees them. */
function observer() {
  const seen: { info: GeoIpInfo | undefined; country: string | undefined; karma: number }[] = []
  const plugin = definePlugin({
    name: 'test/observe',
    options: {},
    setup: () => ({
      hooks: {
        rcpt: (ctx) => {
          seen.push({
            info: ctx.connection.notes.get(GeoIp),
            country: ctx.connection.notes.get(GeoIpCountry),
            karma: ctx.get(Karma),
          })
          return pass()
        },
      },
    }),
  })
  return { seen, plugin }
}

const TRUSTED = { xclient_trusted: ['127.0.0.0/8'] }

/** A session as `address` (through XCLIENT), one message; the stored text and the server's summary line. */
async function sessionAs(
  srv: TestServer,
  address: string,
  message: string,
): Promise<{ code: number; text: string | undefined }> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO proxy.test', 250)
  await c.send(`XCLIENT ADDR=${address}`, 220)
  await c.send('EHLO client.test', 250)
  const { code } = await sendMail(c, 'a@sender.test', ['b@local.test'], message)
  await c.quit()
  return { code, text: srv.queued.at(-1)?.text }
}

async function withServer(opts: TestServerOptions, fn: (srv: TestServer) => Promise<void>): Promise<void> {
  const srv = await startTestServer(opts)
  try {
    await fn(srv)
  } finally {
    await srv.close()
  }
}

const MESSAGE = plainMessage('Greetings from afar.\r\n')

describe('ident/geoip on MaxMind test databases', () => {
  it('a client in Milton, US (XCLIENT): the keys, the distance from London, too_far karma, X-GeoIP-* on top', async () => {
    const o = observer()
    const db_dir = dbDir(ALL)
    const plugins = [geoip({ db_dir, distance: '81.2.69.142', too_far: '5000' }), o.plugin(), acceptRcpt()]
    await withServer({ plugins, config: TRUSTED }, async (srv) => {
      const forged = plainMessage('Greetings from afar.\r\n', { 'X-GeoIP-Country': 'forged' })
      const { code, text } = await sessionAs(srv, '216.160.83.56', forged)
      assert.equal(code, 250)
      const km = greatCircleKm({ latitude: 51.5142, longitude: -0.0931 }, { latitude: 47.2513, longitude: -122.3149 })
      assert.ok(km > 7600 && km < 7800, String(km)) // London to Seattle: about 7,700 km
      assert.deepEqual(o.seen[0], {
        info: {
          country: 'US',
          countryName: 'United States',
          continent: 'NA',
          city: 'Milton',
          latitude: 47.2513,
          longitude: -122.3149,
          distanceKm: km,
          asn: 209,
        },
        country: 'US',
        karma: -1,
      })
      const head = 'X-GeoIP-ASN: 209\r\nX-GeoIP-City: Milton\r\nX-GeoIP-Continent: NA\r\nX-GeoIP-Country: US\r\n'
      assert.ok(text?.startsWith(`${head}Received: from client.test `), text)
      assert.ok(text?.endsWith(`\r\n${MESSAGE}`), text)
      assert.doesNotMatch(text ?? '', /forged/)
      assert.match(await summaryLine(srv), new RegExp(`ident/geoip:pass\\(NA, US, Milton, AS209, ${km} km\\)`))
      assert.equal(srv.metrics.value('qtsmtpd_ident_lookups_total', { plugin: 'ident/geoip', outcome: 'found' }), 1)
    })
  })

  it('a client in Linköping through the PROXY protocol: the city as an RFC 2047 word, the ASN organisation', async () => {
    const o = observer()
    const plugins = [geoip({ db_dir: dbDir(ALL) }), o.plugin(), acceptRcpt()]
    await withServer({ plugins, config: { proxy_trusted: ['127.0.0.1'] } }, async (srv) => {
      const c = await SmtpTestClient.connect(srv.port)
      c.write('PROXY TCP4 89.160.20.112 198.51.100.25 40001 25\r\n')
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      assert.equal((await sendMail(c, 'a@sender.test', ['b@local.test'], MESSAGE)).code, 250)
      await c.quit()
      assert.equal(o.seen[0]?.info?.city, 'Linköping')
      assert.equal(o.seen[0]?.info?.asnOrganization, 'Bredband2 AB')
      assert.equal(o.seen[0]?.info?.distanceKm, undefined)
      const text = srv.queued[0]?.text ?? ''
      assert.ok(
        text.startsWith(
          'X-GeoIP-ASN: 29518\r\nX-GeoIP-City: =?UTF-8?B?TGlua8O2cGluZw==?=\r\nX-GeoIP-Continent: EU\r\nX-GeoIP-Country: SE\r\nReceived: ',
        ),
        text,
      )
    })
  })

  it('the loopback client is not located: no keys, no fields; an IPv6 client (XCLIENT) is; add_headers 0', async () => {
    const o = observer()
    const plugins = [geoip({ db_dir: dbDir(ALL), add_headers: '0' }), o.plugin(), acceptRcpt()]
    await withServer({ plugins, config: TRUSTED }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      assert.equal((await sendMail(c, 'a@sender.test', ['b@local.test'], MESSAGE)).code, 250)
      await c.quit()
      assert.ok(srv.queued[0]?.text.startsWith('Received: '))
      assert.deepEqual(o.seen[0], { info: undefined, country: undefined, karma: 0 })
      assert.match(await summaryLine(srv), /ident\/geoip:skip\(no results\)/)
      const { text } = await sessionAs(srv, 'IPV6:2001:218::1', MESSAGE)
      assert.ok(text?.startsWith('Received: '))
      assert.deepEqual(o.seen[1]?.info, {
        country: 'JP',
        countryName: 'Japan',
        continent: 'AS',
        latitude: 35.68536,
        longitude: 139.75309,
      })
    })
  })

  it('XCLIENT to an address the databases do not know clears what the previous client left', async () => {
    const o = observer()
    await withServer(
      { plugins: [geoip({ db_dir: dbDir(ALL) }), o.plugin(), acceptRcpt()], config: TRUSTED },
      async (srv) => {
        const c = await srv.connect()
        await c.expect(220)
        await c.send('EHLO proxy.test', 250)
        for (const address of ['216.160.83.56', '192.0.2.1']) {
          await c.send(`XCLIENT ADDR=${address}`, 220)
          await c.send('EHLO client.test', 250)
          await c.send('MAIL FROM:<a@sender.test>', 250)
          await c.send('RCPT TO:<b@local.test>', 250)
          await c.send('RSET', 250)
        }
        await c.quit()
        assert.equal(o.seen[0]?.country, 'US')
        assert.deepEqual(o.seen[1], { info: undefined, country: undefined, karma: 0 })
      },
    )
  })

  it("only a Country database: country and continent; greylisting's geoip option spares the listed country", async () => {
    const db_dir = dbDir({ 'GeoLite2-Country.mmdb': COUNTRY })
    const plugins = [geoip({ db_dir }), greylisting({ geoip: ['se'] }), acceptRcpt()]
    await withServer({ plugins, config: TRUSTED }, async (srv) => {
      for (const [address, reply] of [
        ['89.160.20.112', 250],
        ['216.160.83.56', 450],
      ] as const) {
        const c = await srv.connect()
        await c.expect(220)
        await c.send('EHLO proxy.test', 250)
        await c.send(`XCLIENT ADDR=${address}`, 220)
        await c.send('EHLO client.test', 250)
        // Greylisting by client address alone defers at MAIL.
        await c.send('MAIL FROM:<a@sender.test>', reply)
        await c.quit()
      }
      assert.match(await summaryLine(srv), /ident\/geoip:pass\(EU, SE\)/)
    })
  })
})

describe('ident/geoip: databases that are missing, wrong or damaged', () => {
  const startError = async (options: Parameters<typeof geoip>[0]) => {
    try {
      const srv = await startTestServer({ plugins: [geoip(options)] })
      await srv.close()
      return 'started'
    } catch (e) {
      return (e as Error).message
    }
  }

  it('stop the start with the file and the reason', async () => {
    const empty = dbDir({})
    assert.match(
      await startError({ db_dir: empty }),
      new RegExp(`no GeoIP database in ${empty} \\(looked for GeoIP2-City\\.mmdb, `),
    )
    const garbage = dbDir({ 'GeoLite2-City.mmdb': Buffer.from('not a database\n') })
    assert.match(await startError({ db_dir: garbage }), /GeoLite2-City\.mmdb: not a MaxMind database: /)
    const swapped = dbDir({ 'GeoLite2-City.mmdb': ASN })
    assert.match(
      await startError({ db_dir: swapped }),
      /GeoLite2-City\.mmdb: a GeoLite2-ASN database, not a city database/,
    )
    const noCity = dbDir({ 'GeoLite2-Country.mmdb': COUNTRY })
    assert.match(
      await startError({ db_dir: noCity, distance: '81.2.69.142' }),
      /option "distance" needs a City database/,
    )
    const all = dbDir(ALL)
    assert.match(
      await startError({ db_dir: all, distance: '192.0.2.1' }),
      /the City database has no location for 192\.0\.2\.1/,
    )
    assert.match(await startError({ db_dir: all, too_far: '3000' }), /option "too_far" needs "distance"/)
  })

  /** The City database with the start of its data section zeroed: its metadata still reads, lookups throw. */
  const damagedCity = () => {
    const bytes = Buffer.from(readFileSync(CITY))
    const treeBytes = 1547 * 7 // node count × 28-bit records × 2 / 8, from the metadata
    return bytes.fill(0, treeBytes + 16, treeBytes + 16 + 4000)
  }

  it('a damaged record: the client goes on without a location, logged and counted', async () => {
    const o = observer()
    const plugins = [geoip({ db_dir: dbDir({ 'GeoLite2-City.mmdb': damagedCity() }) }), o.plugin(), acceptRcpt()]
    await withServer({ plugins, config: TRUSTED }, async (srv) => {
      const { code } = await sessionAs(srv, '216.160.83.56', MESSAGE)
      assert.equal(code, 250)
      assert.equal(o.seen[0]?.info, undefined)
      assert.match(await summaryLine(srv), /ident\/geoip:error\([^)]*Invalid Extended Type/)
      assert.equal(srv.metrics.value('qtsmtpd_ident_lookups_total', { plugin: 'ident/geoip', outcome: 'failed' }), 1)
    })
  })

  it('a database replaced on disk is reopened (checked at most once a minute, no connection waits); one that does not open is not', async () => {
    const db_dir = dbDir({ 'GeoLite2-City.mmdb': damagedCity() })
    const file = join(db_dir, 'GeoLite2-City.mmdb')
    /** As geoipupdate does: a new file renamed over the old one. */
    const replace = (bytes: Buffer) => {
      writeFileSync(`${file}.new`, bytes)
      renameSync(`${file}.new`, file)
    }
    const clock = fakeClock()
    const o = observer()
    const logged = async (srv: TestServer, text: string) => {
      for (let i = 0; i < 500 && !srv.logs.some((e) => e.message.startsWith(text)); i++)
        await new Promise((r) => setTimeout(r, 10))
      assert.ok(
        srv.logs.some((e) => e.message.startsWith(text)),
        text,
      )
    }
    await withServer(
      { plugins: [geoip({ db_dir }), o.plugin(), acceptRcpt()], config: TRUSTED, clock },
      async (srv) => {
        await sessionAs(srv, '216.160.83.56', MESSAGE)
        replace(Buffer.from('a download cut short\n'))
        await clock.advance(61_000)
        await sessionAs(srv, '216.160.83.56', MESSAGE)
        await logged(srv, `keeping the GeoIP database in memory: ${file}: not a MaxMind database: `)
        replace(readFileSync(CITY))
        await clock.advance(30_000)
        await sessionAs(srv, '216.160.83.56', MESSAGE)
        await clock.advance(31_000)
        await sessionAs(srv, '216.160.83.56', MESSAGE)
        await logged(srv, `GeoIP databases reopened: ${file}`)
        await sessionAs(srv, '216.160.83.56', MESSAGE)
        assert.deepEqual(
          o.seen.map((s) => s.info?.city),
          [undefined, undefined, undefined, undefined, 'Milton'],
        )
      },
    )
  })
})

describe('encodedWords', () => {
  const cases = [
    { text: 'Milton', want: 'Milton' },
    { text: 'Linköping', want: '=?UTF-8?B?TGlua8O2cGluZw==?=' },
    { text: 'a\r\nBcc: x', want: `=?UTF-8?B?${Buffer.from('a\r\nBcc: x').toString('base64')}?=` },
    {
      text: 'ö'.repeat(30),
      want: `=?UTF-8?B?${Buffer.from('ö'.repeat(22)).toString('base64')}?= =?UTF-8?B?${Buffer.from('ö'.repeat(8)).toString('base64')}?=`,
    },
  ]
  for (const c of cases) it(JSON.stringify(c.text), () => assert.equal(encodedWords(c.text), c.want))
})
