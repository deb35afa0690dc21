import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parsePluginArgs } from '../../host/options.ts'
import { startTestServer, type TestServer } from '../../testing/index.ts'
import { acceptRcpt, receivedPattern, sendMailSession } from '../test-support.ts'
import discard from './discard.ts'
import quarantine from './quarantine.ts'

const CONTENT = 'Subject: q\r\n\r\nbody\r\n'

let base: string
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'qtsmtpd-quarantine-test-'))
})
after(async () => {
  await rm(base, { recursive: true, force: true })
})

const transaction = (srv: TestServer, to: string[]) => sendMailSession(srv, 'sender@example.org', to, CONTENT)

const today = () => new Date().toISOString().slice(0, 10)

describe('queue/quarantine', () => {
  it('stores the envelope fields and the message durably, then answers 250 Quarantined as <id>', async () => {
    const dir = join(base, 'accept')
    const srv = await startTestServer({ plugins: [acceptRcpt(), quarantine({ dir })], memoryQueue: false })
    try {
      const r = await transaction(srv, ['a@x.test', 'b@y.test'])
      const m = /^250 2\.0\.0 Quarantined as ([0-9a-z]{22})\r\n$/.exec(r.raw)
      assert.ok(m, r.raw)
      const id = m[1] as string
      assert.deepEqual(await readdir(dir), [today()])
      assert.deepEqual(await readdir(join(dir, today())), [`${id}.eml`])
      const stored = await readFile(join(dir, today(), `${id}.eml`), 'utf8')
      assert.match(
        stored,
        new RegExp(
          '^X-Envelope-From: <sender@example\\.org>\\r\\nX-Envelope-To: <a@x\\.test>\\r\\nX-Envelope-To: <b@y\\.test>\\r\\n' +
            receivedPattern({ helo: 'client.test', me: 'mx.test', id }) +
            'Subject: q\\r\\n\\r\\nbody\\r\\n$',
        ),
      )
    } finally {
      await srv.close()
    }
  })

  it('a relative dir is taken from the directory holding the config directory, not the working directory', async () => {
    const srv = await startTestServer({
      plugins: [acceptRcpt(), quarantine({ dir: 'quarantine' })],
      memoryQueue: false,
      baseDir: base,
    })
    try {
      const r = await transaction(srv, ['a@x.test'])
      assert.match(r.raw, /^250 2\.0\.0 Quarantined as /)
      assert.equal((await readdir(join(base, 'quarantine', today()))).length, 1)
    } finally {
      await srv.close()
    }
  })

  it('reply reject: stores it, then 554 5.7.1', async () => {
    const dir = join(base, 'reject')
    const srv = await startTestServer({
      plugins: [acceptRcpt(), quarantine({ dir, reply: 'reject' })],
      memoryQueue: false,
    })
    try {
      const r = await transaction(srv, ['a@x.test'])
      const m = /^554 5\.7\.1 Message quarantined as ([0-9a-z]{22})\r\n$/.exec(r.raw)
      assert.ok(m, r.raw)
      assert.deepEqual(await readdir(join(dir, today())), [`${m[1]}.eml`])
    } finally {
      await srv.close()
    }
  })

  it('a failed write is 451 and leaves no file', async () => {
    const dir = join(base, 'broken')
    const srv = await startTestServer({ plugins: [acceptRcpt(), quarantine({ dir })], memoryQueue: false })
    try {
      await writeFile(join(dir, today()), 'not a directory')
      const r = await transaction(srv, ['a@x.test'])
      assert.equal(r.raw, '451 4.3.0 Error: queuing failed; try again later\r\n')
      assert.deepEqual(await readdir(dir), [today()])
    } finally {
      await srv.close()
    }
  })

  it('reads qpsmtpd-style arguments and refuses bad ones', () => {
    assert.deepEqual(parsePluginArgs(quarantine.definition.options, ['/q', 'reply', 'reject']), {
      dir: '/q',
      reply: 'reject',
      marked_only: false,
    })
    assert.equal(parsePluginArgs(quarantine.definition.options, ['/q', 'marked_only', '1']).marked_only, true)
    assert.throws(() => quarantine({ dir: base, reply: 'maybe' as never }), /option "reply"/)
    assert.throws(() => parsePluginArgs(quarantine.definition.options, []), /option "dir" is required/)
  })
})

describe('queue/discard', () => {
  it('answers 250 Queued as <id>, stores nothing and logs the drop', async () => {
    const srv = await startTestServer({ plugins: [acceptRcpt(), discard()] })
    try {
      const r = await transaction(srv, ['a@x.test'])
      const m = /^250 2\.0\.0 Queued as ([0-9a-z]{22})\r\n$/.exec(r.raw)
      assert.ok(m, r.raw)
      assert.equal(srv.queued.length, 0)
      const line = new RegExp(
        `^message ${m[1]} discarded: \\d+ octets from <sender@example\\.org> to 1 recipient\\(s\\)$`,
      )
      assert.ok(srv.logs.some((e) => line.test(e.message) && e.plugin === 'queue/discard'))
    } finally {
      await srv.close()
    }
  })

  it('log 0 is silent', async () => {
    const srv = await startTestServer({ plugins: [acceptRcpt(), discard({ log: '0' })] })
    try {
      const r = await transaction(srv, ['a@x.test'])
      assert.match(r.raw, /^250 2\.0\.0 Queued as /)
      assert.ok(!srv.logs.some((e) => e.message.includes('discarded')))
    } finally {
      await srv.close()
    }
  })
})
