import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { ConfigError } from '../../config/config-error.ts'
import { SmtpTestClient, startTestServer, type TestServer, withTestServer } from '../../testing/index.ts'
import rcptOk from '../rcpt/ok.ts'
import relay from './relay.ts'

const DENIED = /^550 5\.7\.1 Relaying denied\r\n$/
const OK = /^250 2\.1\.5 /

async function tryRelay(srv: TestServer, client?: SmtpTestClient): Promise<string> {
  const c = client ?? (await srv.connect())
  await c.expect(220)
  await c.send('EHLO client.example', 250)
  await c.send('MAIL FROM:<s@client.example>', 250)
  await c.send('RCPT TO:<u@elsewhere.example>')
  const r = await c.reply()
  await c.quit()
  return r.raw
}

function withServer<T>(
  config: Record<string, string[]>,
  fn: (srv: TestServer) => Promise<T>,
  opts: { only?: boolean; listeners?: { host: string; port: number }[] } = {},
): Promise<T> {
  return withTestServer(
    {
      plugins: [relay(opts.only ? { only: true } : {}), rcptOk()],
      config: { rcpthosts: ['local.test'], ...config },
      ...(opts.listeners ? { listeners: opts.listeners } : {}),
    },
    fn,
  )
}

describe('relay: who may relay (client 127.0.0.1)', () => {
  const savedEnv = process.env.RELAYCLIENT
  afterEach(() => {
    if (savedEnv === undefined) delete process.env.RELAYCLIENT
    else process.env.RELAYCLIENT = savedEnv
  })
  before(() => {
    delete process.env.RELAYCLIENT
  })

  const cases: { name: string; config: Record<string, string[]>; want: RegExp }[] = [
    { name: 'no lists: denied', config: {}, want: DENIED },
    { name: 'relayclients: exact address', config: { relayclients: ['127.0.0.1'] }, want: OK },
    { name: 'relayclients: CIDR', config: { relayclients: ['10.0.0.0/8', '127.0.0.0/8'] }, want: OK },
    { name: 'relayclients: qpsmtpd prefix', config: { relayclients: ['127.0.'] }, want: OK },
    { name: 'relayclients: other network', config: { relayclients: ['127.0.0.2', '192.168.'] }, want: DENIED },
    { name: 'relayclients: IPv4-mapped CIDR', config: { relayclients: ['::ffff:127.0.0.0/104'] }, want: OK },
    { name: 'relayclients: IPv6 catch-all does not cover IPv4', config: { relayclients: ['::/0'] }, want: DENIED },
    { name: 'morerelayclients', config: { morerelayclients: ['127.0.0.1'] }, want: OK },
    {
      name: 'norelayclients wins over relayclients',
      config: { relayclients: ['127.0.0.0/8'], norelayclients: ['127.0.0.1'] },
      want: DENIED,
    },
    {
      name: 'norelayclients wins over morerelayclients',
      config: { morerelayclients: ['127.0.0.1'], norelayclients: ['127.0.'] },
      want: DENIED,
    },
  ]
  for (const t of cases)
    it(t.name, () => withServer(t.config, async (srv) => assert.match(await tryRelay(srv), t.want)))

  it('RELAYCLIENT in the environment makes every client a relay client', async () => {
    process.env.RELAYCLIENT = ''
    await withServer({}, async (srv) => assert.match(await tryRelay(srv), DENIED))
    process.env.RELAYCLIENT = '0'
    await withServer({}, async (srv) => assert.match(await tryRelay(srv), DENIED))
    process.env.RELAYCLIENT = '1'
    await withServer({}, async (srv) => {
      assert.match(await tryRelay(srv), OK)
      assert.ok(srv.logs.some((e) => /RELAYCLIENT is set/.test(e.message)))
    })
  })

  it('norelayclients wins over RELAYCLIENT', async () => {
    process.env.RELAYCLIENT = '1'
    await withServer({ norelayclients: ['127.0.0.1'] }, async (srv) => assert.match(await tryRelay(srv), DENIED))
  })

  it('a dual-stack listener sees ::ffff:127.0.0.1 and matches IPv4 entries', () =>
    withServer({ relayclients: ['127.0.0.1/32'] }, async (srv) => assert.match(await tryRelay(srv), OK), {
      listeners: [{ host: '::', port: 0 }],
    }))
})

describe('relay: IPv6 clients (::1)', () => {
  const v6 = async (srv: TestServer) => SmtpTestClient.connect(srv.port, '::1')
  const listeners = [{ host: '::1', port: 0 }]

  it('::1 is a relay client, as in qpsmtpd', () =>
    withServer({}, async (srv) => assert.match(await tryRelay(srv, await v6(srv)), OK), { listeners }))
  it('norelayclients can take ::1 back', () =>
    withServer({ norelayclients: ['::1'] }, async (srv) => assert.match(await tryRelay(srv, await v6(srv)), DENIED), {
      listeners,
    }))
  it('an IPv6 prefix in norelayclients matches the expanded address', () =>
    withServer(
      { norelayclients: ['0:0:0:0:0:0:0:'] },
      async (srv) => assert.match(await tryRelay(srv, await v6(srv)), DENIED),
      { listeners },
    ))
})

describe('relay only 1', () => {
  it('refuses every recipient, local ones too, from a client that may not relay', () =>
    withServer(
      {},
      async (srv) => {
        const c = await srv.connect()
        await c.expect(220)
        await c.send('EHLO client.example', 250)
        await c.send('MAIL FROM:<s@client.example>', 250)
        await c.send('RCPT TO:<u@local.test>', DENIED)
        await c.send('RCPT TO:<u@elsewhere.example>', DENIED)
        await c.quit()
      },
      { only: true },
    ))

  it('accepts (OK) recipients from a relay client by itself, without rcpt_ok', () =>
    withTestServer({ plugins: [relay({ only: true })], config: { relayclients: ['127.0.0.1'] } }, async (srv) => {
      assert.match(await tryRelay(srv), OK)
    }))
})

describe('relay: configuration', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relay-conf-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('loads as `relay only 1` from a plugins file', async () => {
    await writeFile(join(dir, 'plugins'), 'relay only 1\nrcpt_ok\n')
    await writeFile(join(dir, 'relayclients'), '# trusted\n127.0.0.0/8\n')
    await withTestServer({ configDir: dir }, async (srv) => {
      assert.match(await tryRelay(srv), OK)
    })
  })

  it('a bad relayclients entry stops the start at file:line', async () => {
    await writeFile(join(dir, 'plugins'), 'relay\nrcpt_ok\n')
    await writeFile(join(dir, 'relayclients'), '127.0.0.1\n\n10.0.0.0/33\n')
    await assert.rejects(startTestServer({ configDir: dir }), (e: unknown) => {
      assert.ok(e instanceof ConfigError)
      assert.equal(e.message, `${join(dir, 'relayclients')}:3: not an IP address, CIDR or prefix: "10.0.0.0/33"`)
      return true
    })
  })
})

describe('relay: relayclients takes effect when edited, without SIGHUP', () => {
  it('a client added is a relay client on its next connection; a broken edit keeps the last good list', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relay-live-'))
    try {
      await writeFile(join(dir, 'plugins'), 'check_relay\nrcpt_ok\n')
      await writeFile(join(dir, 'rcpthosts'), 'local.test\n')
      await withTestServer({ configDir: dir }, async (srv) => {
        assert.match(await tryRelay(srv), DENIED)
        await writeFile(join(dir, 'relayclients'), '127.0.0.1\n')
        // Files are checked at most once a second.
        await sleep(1100)
        assert.match(await tryRelay(srv), OK)
        await writeFile(join(dir, 'relayclients'), '127.0.0.1\n127.0.0.2/33\n')
        await sleep(1100)
        assert.match(await tryRelay(srv), OK)
        const warning = srv.logs.find((e) => e.level === 4 && e.message.includes('previous contents stay in force'))
        assert.match(warning?.message ?? '', new RegExp(`${join(dir, 'relayclients')}:2: not an IP address`))
        await rm(join(dir, 'relayclients'))
        await sleep(1100)
        assert.match(await tryRelay(srv), DENIED)
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
