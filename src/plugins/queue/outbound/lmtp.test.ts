import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { relative } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type Dovecot, startDovecot } from '../../../../test/peers/dovecot.ts'
import type { PluginChoice } from '../../../host/define-plugin.ts'
import { acceptAllRecipients } from '../../../testing/accept-all-recipients.ts'
import { startTestServer, type TestServer } from '../../../testing/test-server.ts'
import lmtp from './lmtp.ts'
import { simpleBody, transact } from './test-support.ts'

describe('queue/lmtp → Dovecot LMTP', () => {
  let dv: Dovecot
  const servers: TestServer[] = []
  const serve = async (plugin: PluginChoice): Promise<TestServer> => {
    const srv = await startTestServer({ plugins: [plugin, acceptAllRecipients()], memoryQueue: false })
    servers.push(srv)
    return srv
  }
  before(async () => {
    dv = await startDovecot()
  })
  after(async () => {
    for (const s of servers) await s.close()
    await dv?.stop()
  })

  it('delivers to known users over TCP; unknown users are refused at RCPT (check_rcpt default)', async () => {
    const srv = await serve(lmtp({ host: '127.0.0.1', port: dv.port }))
    const t = await transact(
      srv,
      'a@src.test',
      ['alice@example.test', 'ghost@example.test', 'bob@example.test'],
      simpleBody('lmtp'),
    )
    assert.equal(t.rcpts[0]?.code, 250)
    assert.match(t.rcpts[1]?.raw ?? '', /^550 5\.1\.1 .*User doesn't exist/)
    assert.equal(t.rcpts[2]?.code, 250)
    assert.match(t.final?.raw ?? '', /^250 2\.0\.0 Queued as \S+ \(next hop: <alice@example\.test> .*Saved\)/)
    // The message's log line has Dovecot's answer for each recipient.
    const line = srv.logs.find((e) => e.message.startsWith('accepted '))?.message ?? ''
    const hop = `127\\.0\\.0\\.1:${dv.port}`
    assert.match(
      line,
      new RegExp(
        ` to=<alice@example\\.test> to=<bob@example\\.test> .* results=\\[.*` +
          `queue/lmtp:pass\\(${hop} <alice@example\\.test> said 250 2\\.0\\.0 <alice@example\\.test> \\S+ Saved\\) ` +
          `queue/lmtp:pass\\(${hop} <bob@example\\.test> said 250 2\\.0\\.0 <bob@example\\.test> \\S+ Saved\\)\\]$`,
      ),
    )
    const [m] = await dv.mailbox('alice')
    assert.match(m ?? '', /Subject: lmtp/)
    assert.match(m ?? '', /\n\.leading dot\r?\n\.\.two dots/)
    assert.equal((await dv.mailbox('bob')).length, 1)
  })

  it('delivers over the Unix socket, reusing the pooled session', async () => {
    const srv = await serve(lmtp({ socket: dv.socket }))
    for (const s of ['sock1', 'sock2']) {
      const t = await transact(srv, 'a@src.test', ['bob@example.test'], simpleBody(s))
      assert.equal(t.final?.code, 250)
    }
    const bob = await dv.mailbox('bob')
    assert.ok(bob.some((m) => m.includes('Subject: sock2')))
    assert.equal((await dv.log()).match(/Connect from local/g)?.length, 1, 'one LMTP session for both messages')
  })

  it('relative socket paths (socket, a bare path, unix:) are taken from the install directory', async () => {
    const relativeSocket = relative(dv.dir, dv.socket) // run/lmtp-test
    const choices = [
      lmtp({ socket: relativeSocket }),
      lmtp({ host: relativeSocket }),
      lmtp({ hosts: [`unix:${relativeSocket}`] }),
    ]
    for (const [i, choice] of choices.entries()) {
      const srv = await startTestServer({
        plugins: [choice, acceptAllRecipients()],
        baseDir: dv.dir,
        memoryQueue: false,
      })
      servers.push(srv)
      const t = await transact(srv, 'a@src.test', ['bob@example.test'], simpleBody(`relative${i}`))
      assert.equal(t.final?.code, 250, t.final?.raw)
    }
    const bob = await dv.mailbox('bob')
    for (const i of [0, 1, 2])
      assert.ok(
        bob.some((m) => m.includes(`Subject: relative${i}`)),
        `relative${i}`,
      )
  })

  it("without check_rcpt an unknown user refuses the whole message with Dovecot's 5xx", async () => {
    const srv = await serve(lmtp({ host: '127.0.0.1', port: dv.port, check_rcpt: false }))
    const before = (await dv.mailbox('alice')).length
    const t = await transact(srv, 'a@src.test', ['alice@example.test', 'ghost@example.test'], simpleBody('nocheck'))
    assert.equal(t.rcpts[1]?.code, 250, 'accepted by us')
    assert.match(t.final?.raw ?? '', /^550-5\.1\.1 <ghost@example\.test>: 550 .*\r\n550 5\.1\.1 Not forwarded/)
    assert.equal((await dv.mailbox('alice')).length, before, 'nothing delivered to a subset')
  })

  it('per-recipient replies after DATA: a 452 for one → that 4xx for all (at-least-once), the other has its copy', async () => {
    const srv = await serve(lmtp({ host: '127.0.0.1', port: dv.port }))
    const before = (await dv.mailbox('alice')).length
    const t = await transact(
      srv,
      'a@src.test',
      ['alice@example.test', 'tinytemp@example.test'],
      simpleBody('quota-temp'),
    )
    assert.match(
      t.final?.raw ?? '',
      /^452-4\.2\.2 <tinytemp@example\.test>: 452 .*Quota exceeded.*\r\n452 4\.2\.2 Delivered to 1 of 2 recipients; retry the whole message\r\n$/,
    )
    assert.equal((await dv.mailbox('alice')).length, before + 1)
    // The client retries: alice gets a second copy (documented), tinytemp is still deferred.
    const again = await transact(
      srv,
      'a@src.test',
      ['alice@example.test', 'tinytemp@example.test'],
      simpleBody('quota-temp'),
    )
    assert.equal(again.final?.code, 452)
    assert.equal((await dv.mailbox('alice')).length, before + 2)
  })

  it('a 552 after DATA for one, 250 for the other → 552 naming who got it', async () => {
    const srv = await serve(lmtp({ host: '127.0.0.1', port: dv.port }))
    const t = await transact(srv, 'a@src.test', ['bob@example.test', 'tinyperm@example.test'], simpleBody('quota-perm'))
    assert.match(
      t.final?.raw ?? '',
      /^552-5\.2\.2 <tinyperm@example\.test>: 552 .*\r\n552 5\.2\.2 Delivered only to <bob@example\.test>\r\n$/,
    )
  })

  it('every recipient over quota (permanent) → 552', async () => {
    const srv = await serve(lmtp({ host: '127.0.0.1', port: dv.port }))
    const t = await transact(srv, 'a@src.test', ['tinyperm@example.test'], simpleBody('quota-perm'))
    assert.match(t.final?.raw ?? '', /^552 5\.2\.2 <tinyperm@example\.test> Quota exceeded/)
  })

  it('LMTP server down → 451 at RCPT time', async () => {
    const srv = await serve(lmtp({ socket: `${dv.dir}/no-such-socket` }))
    const t = await transact(srv, 'a@src.test', ['alice@example.test'], simpleBody('down'))
    assert.match(t.rcpts[0]?.raw ?? '', /^451 4\.4\.1 /)
  })

  it('an SMTPUTF8 message goes only to a Dovecot that offers SMTPUTF8 (2.4); 2.3 gets none, the client 451', async () => {
    // What this Dovecot offers (2.3 has no SMTPUTF8; 2.4 has it).
    const lhlo = await new Promise<string>((resolve, reject) => {
      const s = connect(dv.port, '127.0.0.1')
      let got = ''
      s.on('data', (d) => {
        got += d.toString('latin1')
        if (/^220 [^\r]*\r\n$/.test(got)) s.write('LHLO probe.test\r\n')
        else if (/\r\n250 [^\r]*\r\n$/.test(`\r\n${got}`)) s.end('QUIT\r\n', () => resolve(got))
      })
      s.on('error', reject)
    })
    const srv = await serve(lmtp({ host: '127.0.0.1', port: dv.port }))
    const before = (await dv.mailbox('alice')).length
    const t = await transact(srv, 'a@src.test', ['alice@example.test'], simpleBody('Grüße'), {
      mailParams: 'SMTPUTF8',
    })
    if (/^250[- ]SMTPUTF8\r$/m.test(lhlo)) assert.equal(t.final?.code, 250)
    else {
      assert.match(t.final?.raw ?? t.rcpts[0]?.raw ?? '', /^451 4\.3\.3 /)
      assert.equal((await dv.mailbox('alice')).length, before)
    }
  })
})
