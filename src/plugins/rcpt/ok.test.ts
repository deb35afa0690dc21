import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { definePlugin } from '../../host/define-plugin.ts'
import { pass } from '../../host/verdict.ts'
import { startTestServer, type TestServer } from '../../testing/index.ts'
import rcptOk from './ok.ts'

const D = 'victim.example'
const R = 'local.test'
const IP = '127.0.0.1'
const DENIED = /^550 5\.7\.1 Relaying denied\r\n$/
const SYNTAX = /^501 5\.1\.3 /
const OK = /^250 2\.1\.5 /

/** Marks the client as a relay client at connect (what the relay plugin or AUTH does). */
const relayEveryone = definePlugin({
  name: 'test/relay-everyone',
  options: {},
  setup: () => ({
    hooks: {
      connect: (ctx) => {
        ctx.connection.relayClient = true
        return pass()
      },
    },
  }),
})

async function session(srv: TestServer, helo = 'EHLO client.example') {
  const c = await srv.connect()
  await c.expect(220)
  await c.send(helo, 250)
  return c
}

/** nmap smtp-open-relay.nse's 13 recipient forms plus security.md §1.7's additions. */
const relayRecipients = [
  `<relaytest@${D}>`,
  `<relaytest%${D}@[${IP}]>`,
  `<relaytest%${D}@${R}>`,
  `<"relaytest@${D}">`,
  `<"relaytest%${D}">`,
  `<relaytest@${D}@[${IP}]>`,
  `<"relaytest@${D}"@[${IP}]>`,
  `<relaytest@${D}@${R}>`,
  `<@[${IP}]:relaytest@${D}>`,
  `<@${R}:relaytest@${D}>`,
  `<${D}!relaytest>`,
  `<${D}!relaytest@[${IP}]>`,
  `<${D}!relaytest@${R}>`,
  `<relaytest@${D}.>`,
  '<relaytest@[192.0.2.1]>',
  '<relaytest@[IPv6:2001:db8::1]>',
  `<RELAYTEST@${D.toUpperCase()}>`,
  `<relaytest%${D.toUpperCase()}@${R.toUpperCase()}>`,
  '<relaytest@xn--bcher-kva.example>',
  `<relaytest@evil${R}>`,
  `<relaytest@${R}.${D}>`,
  `relaytest@${D}`,
  `<relaytest@[IPv6:::ffff:192.0.2.1]>`,
]
const senders = ['<>', `<antispam@${D}>`, `<antispam@${R}>`, `<antispam@[${IP}]>`]

describe('rcpt/ok: open relay matrix (security.md §1.7)', () => {
  let srv: TestServer
  before(async () => {
    srv = await startTestServer({
      plugins: [rcptOk()],
      config: { rcpthosts: [R] },
      limits: { hardErrors: 1000, softErrors: 1000 },
    })
  })
  after(() => srv.close())

  for (const from of senders)
    it(`MAIL FROM:${from}: no foreign or routed recipient is accepted, nothing is queued`, async () => {
      const c = await session(srv)
      for (const to of relayRecipients) {
        await c.send(`MAIL FROM:${from}`, 250)
        await c.send(`RCPT TO:${to}`)
        const got = await c.reply()
        assert.ok(DENIED.test(got.raw) || SYNTAX.test(got.raw), `${from} → ${to}: ${got.raw}`)
        await c.send('DATA', /^554 5\.5\.1 /)
        await c.send('RSET', 250)
      }
      await c.quit()
      assert.equal(srv.queued.length, 0)
    })

  it('accepts <Postmaster>, <postmaster> and mixed-case local domains', async () => {
    const c = await session(srv)
    await c.send(`MAIL FROM:<antispam@${D}>`, 250)
    for (const to of ['<Postmaster>', '<postmaster>', `<u@LOCAL.TEST>`, `<u@Local.Test>`, `<u@${R}>`])
      await c.send(`RCPT TO:${to}`, OK)
    await c.send('DATA', 354)
    await c.send('Subject: t\r\n\r\nhi\r\n.', 250)
    await c.quit()
    assert.equal(srv.queued.length, 1)
    assert.deepEqual(srv.queued[0]?.to, ['Postmaster', 'postmaster', 'u@LOCAL.TEST', 'u@Local.Test', `u@${R}`])
    srv.queued.length = 0
  })

  it('treats u@[our address] as local, other literals as foreign', async () => {
    const c = await session(srv)
    await c.send('MAIL FROM:<>', 250)
    await c.send(`RCPT TO:<u@[${IP}]>`, OK)
    await c.send(`RCPT TO:<u@[IPv6:::ffff:${IP}]>`, OK)
    await c.send('RCPT TO:<u@[127.0.0.2]>', DENIED)
    await c.send('RCPT TO:<u@[IPv6:::1]>', DENIED)
    await c.quit()
  })
})

describe('rcpt/ok: allow_routing 1 (qpsmtpd behaviour)', () => {
  it('accepts a routed local part only at a local domain, delivered to the local domain', async () => {
    const srv = await startTestServer({
      plugins: [rcptOk({ allow_routing: true })],
      config: { rcpthosts: [R] },
      limits: { hardErrors: 1000, softErrors: 1000 },
    })
    try {
      const c = await session(srv)
      const accepted: string[] = []
      for (const to of relayRecipients) {
        await c.send('MAIL FROM:<>', 250)
        await c.send(`RCPT TO:${to}`)
        const got = await c.reply()
        if (got.code === 250) accepted.push(to)
        else assert.ok(DENIED.test(got.raw) || SYNTAX.test(got.raw), `${to}: ${got.raw}`)
        await c.send('RSET', 250)
      }
      assert.deepEqual(accepted, [
        `<relaytest%${D}@[${IP}]>`,
        `<relaytest%${D}@${R}>`,
        `<"relaytest@${D}"@[${IP}]>`,
        `<${D}!relaytest@[${IP}]>`,
        `<${D}!relaytest@${R}>`,
        `<relaytest%${D.toUpperCase()}@${R.toUpperCase()}>`,
      ])
      // Delivered, they keep the local domain: the victim domain is only text in the local part.
      await c.send('MAIL FROM:<>', 250)
      for (const to of accepted) await c.send(`RCPT TO:${to}`, OK)
      await c.send('DATA', 354)
      await c.send('Subject: t\r\n\r\nhi\r\n.', 250)
      await c.quit()
      assert.equal(srv.queued.length, 1)
      for (const to of srv.queued[0]?.to ?? []) assert.match(to, /@(local\.test|LOCAL\.TEST|\[127\.0\.0\.1\])$/i)
    } finally {
      await srv.close()
    }
  })
})

describe('rcpt/ok: local domains', () => {
  let srv: TestServer
  before(async () => {
    srv = await startTestServer({
      me: 'mx.example.org',
      plugins: [rcptOk()],
      config: {
        me: 'mx.example.org',
        rcpthosts: ['example.com', '.sub.example.net   trailing words are ignored', 'Bücher.example'],
        morercpthosts: ['more.example', 'MIXED.Example'],
      },
    })
  })
  after(() => srv.close())

  const cases = [
    { name: 'me', to: 'u@mx.example.org', want: OK },
    { name: 'me, upper case', to: 'u@MX.EXAMPLE.ORG', want: OK },
    { name: 'rcpthosts', to: 'u@example.com', want: OK },
    { name: 'subdomain of a plain entry is foreign', to: 'u@a.example.com', want: DENIED },
    { name: '.domain covers a subdomain', to: 'u@a.sub.example.net', want: OK },
    { name: '.domain covers a deep subdomain', to: 'u@a.b.sub.example.net', want: OK },
    { name: '.domain does not cover the domain itself', to: 'u@sub.example.net', want: DENIED },
    { name: '.domain does not match a longer label', to: 'u@asub.example.net', want: DENIED },
    { name: 'IDN entry matches the A-label', to: 'u@xn--bcher-kva.example', want: OK },
    { name: 'morercpthosts', to: 'u@more.example', want: OK },
    { name: 'morercpthosts, case-insensitive', to: 'u@mixed.example', want: OK },
    { name: 'foreign', to: 'u@elsewhere.example', want: DENIED },
    { name: 'routed local part', to: 'a%b.example@example.com', want: DENIED },
  ]
  for (const t of cases)
    it(t.name, async () => {
      const c = await session(srv)
      await c.send('MAIL FROM:<s@sender.example>', 250)
      await c.send(`RCPT TO:<${t.to}>`, t.want)
      await c.quit()
    })

  it('IDN recipient in U-labels with SMTPUTF8', async () => {
    const c = await session(srv)
    await c.send('MAIL FROM:<s@sender.example> SMTPUTF8', 250)
    await c.send('RCPT TO:<u@bücher.example>', OK)
    await c.send('RCPT TO:<u@BÜCHER.Example>', OK)
    await c.quit()
  })
})

describe('rcpt/ok: relay clients', () => {
  it('accepts any recipient from a relay client, routed local parts too', async () => {
    const srv = await startTestServer({ plugins: [relayEveryone(), rcptOk()], config: { rcpthosts: [R] } })
    try {
      const c = await session(srv)
      await c.send('MAIL FROM:<s@local.test>', 250)
      await c.send(`RCPT TO:<u@${D}>`, OK)
      await c.send(`RCPT TO:<u%${D}@${R}>`, OK)
      await c.quit()
    } finally {
      await srv.close()
    }
  })

  it('loads under its qpsmtpd name from a plugins file', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const dir = await mkdtemp(join(tmpdir(), 'rcpt-ok-'))
    try {
      await writeFile(join(dir, 'plugins'), 'rcpt_ok allow_routing 0\n')
      await writeFile(join(dir, 'me'), 'mx.local.test\n')
      await writeFile(join(dir, 'rcpthosts'), `${R}\n`)
      const srv = await startTestServer({ configDir: dir })
      try {
        const c = await session(srv)
        await c.send('MAIL FROM:<>', 250)
        await c.send(`RCPT TO:<u@${R}>`, OK)
        await c.send('RCPT TO:<u@mx.local.test>', OK)
        await c.send(`RCPT TO:<u@${D}>`, DENIED)
        await c.quit()
      } finally {
        await srv.close()
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('rcpt/ok: rcpthosts and morercpthosts take effect when edited', () => {
  it('a domain added to either file is local on the next RCPT, after at most a second', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const { setTimeout: sleep } = await import('node:timers/promises')
    const dir = await mkdtemp(join(tmpdir(), 'rcpt-ok-live-'))
    try {
      await writeFile(join(dir, 'plugins'), 'rcpt_ok\n')
      await writeFile(join(dir, 'rcpthosts'), `${R}\n`)
      const srv = await startTestServer({ configDir: dir })
      try {
        const c = await session(srv)
        await c.send('MAIL FROM:<>', 250)
        await c.send('RCPT TO:<u@new.test>', DENIED)
        await c.send('RCPT TO:<u@more.test>', DENIED)
        await writeFile(join(dir, 'rcpthosts'), `${R}\nnew.test\n`)
        await writeFile(join(dir, 'morercpthosts'), 'more.test\n')
        await sleep(1100)
        await c.send('RCPT TO:<u@new.test>', OK)
        await c.send('RCPT TO:<u@more.test>', OK)
        await c.send(`RCPT TO:<u@${R}>`, OK)
        await c.quit()
      } finally {
        await srv.close()
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
