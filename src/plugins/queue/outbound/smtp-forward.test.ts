import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { basename } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type Sink, startSink } from '../../../../test/peers/aiosmtpd.ts'
import { freePort } from '../../../../test/peers/free-port.ts'
import { type Postfix, startPostfix } from '../../../../test/peers/postfix.ts'
import { definePlugin, type PluginChoice } from '../../../host/define-plugin.ts'
import { pass } from '../../../host/verdict.ts'
import { acceptAllRecipients } from '../../../testing/accept-all-recipients.ts'
import { makeCertificate, type TestCertificate } from '../../../testing/certs.ts'
import { startTestServer, type TestServer } from '../../../testing/test-server.ts'
import smtpForward, { translateXclientArg } from './smtp-forward.ts'
import { simpleBody, transact } from './test-support.ts'

const servers: TestServer[] = []
async function serve(forward: PluginChoice, check = false): Promise<TestServer> {
  const srv = await startTestServer({
    plugins: check ? [forward, acceptAllRecipients()] : [acceptAllRecipients(), forward],
    memoryQueue: false,
  })
  servers.push(srv)
  return srv
}
after(async () => {
  for (const s of servers) await s.close()
})

describe('queue/smtp-forward → aiosmtpd', () => {
  let sink: Sink
  before(async () => {
    sink = await startSink()
  })
  after(() => sink?.stop())

  it('forwards a message, dot-stuffed, with the reply naming the next hop', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: sink.port, tls: 'none' }))
    const t = await transact(srv, 'a@src.test', ['u1@dest.test', 'u2@dest.test'], simpleBody('plain'))
    assert.match(t.final?.raw ?? '', /^250 2\.0\.0 Queued as \S+ \(next hop: OK: stored as sink-\d+\)/)
    const [m] = (await sink.messages()).slice(-1)
    assert.ok(m)
    assert.deepEqual(m.rcpt_tos, ['u1@dest.test', 'u2@dest.test'])
    assert.equal(m.mail_from, 'a@src.test')
    const text = m.data.toString('utf8')
    assert.match(text, /^Received: from client\.test/)
    assert.match(text, /\r\nHello\.\r\n\.leading dot\r\n\.\.two dots\r\n$/)
    assert.ok(m.mail_options.some((o) => /^SIZE=\d+$/.test(o)))
  })

  it('reuses one pooled connection for two messages', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: sink.port, tls: 'none' }))
    const before = (await sink.messages()).length
    for (const s of ['one', 'two']) {
      const t = await transact(srv, 'a@src.test', ['u1@dest.test'], simpleBody(s))
      assert.equal(t.final?.code, 250)
    }
    const msgs = (await sink.messages()).slice(before)
    assert.equal(msgs.length, 2)
    assert.deepEqual(msgs[0]?.peer, msgs[1]?.peer, 'same client port: same connection')
  })

  it('passes SMTPUTF8 and BODY=8BITMIME on', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: sink.port, tls: 'none' }))
    const t = await transact(srv, 'jörg@src.test', ['u1@dest.test'], simpleBody('ütf8'), {
      mailParams: 'SMTPUTF8 BODY=8BITMIME',
    })
    assert.equal(t.final?.code, 250)
    const [m] = (await sink.messages()).slice(-1)
    assert.equal(m?.mail_from, 'jörg@src.test')
    assert.ok(m?.mail_options.includes('SMTPUTF8'))
    assert.ok(m?.mail_options.includes('BODY=8BITMIME'))
  })

  it('all recipients refused permanently → our 5xx with the remote text', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: sink.port, tls: 'none' }))
    const before = (await sink.messages()).length
    const t = await transact(srv, 'a@src.test', ['perm1@dest.test', 'perm2@dest.test'], simpleBody('perm'))
    assert.match(
      t.final?.raw ?? '',
      /^550-5\.1\.1 <perm1@dest\.test>: No such user here\r\n550 5\.1\.1 <perm2@dest.test>/,
    )
    assert.equal((await sink.messages()).length, before)
  })

  it('some refused permanently, some accepted → one 5xx, nothing forwarded to a subset', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: sink.port, tls: 'none' }))
    const before = (await sink.messages()).length
    const t = await transact(srv, 'a@src.test', ['u1@dest.test', 'perm@dest.test'], simpleBody('mixed'))
    assert.match(
      t.final?.raw ?? '',
      /^550-5\.1\.1 <perm@dest\.test>: 550 No such user here\r\n550 5\.1\.1 Not forwarded/,
    )
    assert.equal((await sink.messages()).length, before)
  })

  it('a recipient deferred by the next hop → 451 for the whole message', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: sink.port, tls: 'none' }))
    const before = (await sink.messages()).length
    const t = await transact(srv, 'a@src.test', ['u1@dest.test', 'temp@dest.test'], simpleBody('temp'))
    assert.match(t.final?.raw ?? '', /^451-4\.2\.1 <temp@dest\.test>/)
    assert.equal((await sink.messages()).length, before)
  })

  it('check_rcpt: the next hop answers each RCPT, the rest is delivered', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: sink.port, tls: 'none', check_rcpt: true }), true)
    const t = await transact(
      srv,
      'a@src.test',
      ['u1@dest.test', 'perm@dest.test', 'temp@dest.test', 'u2@dest.test'],
      simpleBody('check'),
    )
    assert.deepEqual(
      t.rcpts.map((r) => r.raw),
      [
        '250 2.1.5 Recipient OK\r\n',
        '550 5.1.1 No such user here\r\n',
        '451 4.2.1 Mailbox busy, try later\r\n',
        '250 2.1.5 Recipient OK\r\n',
      ],
    )
    assert.equal(t.final?.code, 250)
    const [m] = (await sink.messages()).slice(-1)
    assert.deepEqual(m?.rcpt_tos, ['u1@dest.test', 'u2@dest.test'])
  })

  it('remote 5xx after DATA → our 5xx; remote 452 → our 452', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: sink.port, tls: 'none' }))
    const r1 = await transact(srv, 'a@src.test', ['reject@dest.test'], simpleBody('x'))
    assert.equal(r1.final?.raw, '554 5.7.1 Content rejected by policy\r\n')
    const r2 = await transact(srv, 'a@src.test', ['tempdata@dest.test'], simpleBody('x'))
    assert.equal(r2.final?.raw, '452 4.3.1 Insufficient system storage\r\n')
  })

  it('a next hop that does not answer in time → 451 4.4.2', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: sink.port, tls: 'none', command_timeout: 1 }))
    const t = await transact(srv, 'a@src.test', ['slow@dest.test'], simpleBody('slow'))
    assert.match(t.final?.raw ?? '', /^451 4\.4\.2 /)
  })

  it('a next hop that drops the connection after the final dot → 451, nothing stored', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: sink.port, tls: 'none' }))
    const before = (await sink.messages()).length
    const t = await transact(srv, 'a@src.test', ['die@dest.test'], simpleBody('die'))
    assert.match(t.final?.raw ?? '', /^451 4\.4\.2 /)
    assert.equal((await sink.messages()).length, before)
    // The pool dropped the broken session: the next message goes through on a new one.
    assert.equal((await transact(srv, 'a@src.test', ['u1@dest.test'], simpleBody('after'))).final?.code, 250)
  })

  it('fails over from a refusing host to the next one', async () => {
    const dead = await freePort()
    const srv = await serve(smtpForward({ hosts: `127.0.0.1:${dead},127.0.0.1:${sink.port}`, tls: 'none' }))
    const t = await transact(srv, 'a@src.test', ['u1@dest.test'], simpleBody('failover'))
    assert.equal(t.final?.code, 250)
    assert.ok(srv.logs.some((l) => l.message.includes(`127.0.0.1:${dead}`) && /ECONNREFUSED/.test(l.message)))
  })

  it('a refused connection → 451 4.4.1', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: await freePort(), tls: 'none' }))
    const t = await transact(srv, 'a@src.test', ['u1@dest.test'], simpleBody('refused'))
    assert.match(t.final?.raw ?? '', /^451 4\.4\.1 /)
  })
})

describe('queue/smtp-forward → aiosmtpd with STARTTLS and AUTH', () => {
  let cert: TestCertificate
  let sink: Sink
  before(async () => {
    cert = await makeCertificate('localhost')
    sink = await startSink({ cert, requireTls: true, auth: 'relayuser:s3cret' })
  })
  after(async () => {
    await sink?.stop()
    if (cert) await rm(cert.dir, { recursive: true, force: true })
  })

  const tlsOpts = () => ({ host: '127.0.0.1', port: sink.port, tls_ca: cert.certFile, tls_servername: 'localhost' })

  it('STARTTLS required with a verified certificate, then AUTH', async () => {
    const srv = await serve(
      smtpForward({ ...tlsOpts(), tls: 'required', auth_user: 'relayuser', auth_password: 's3cret' }),
    )
    const t = await transact(srv, 'a@src.test', ['u1@dest.test'], simpleBody('tls'))
    assert.equal(t.final?.code, 250)
    const [m] = (await sink.messages()).slice(-1)
    assert.equal(m?.tls, true)
    assert.equal(m?.auth, true)
  })

  it('a relative tls_ca is taken from the install directory, not the working directory', async () => {
    const srv = await startTestServer({
      plugins: [
        acceptAllRecipients(),
        smtpForward({
          ...tlsOpts(),
          tls_ca: basename(cert.certFile),
          tls: 'required',
          auth_user: 'relayuser',
          auth_password: 's3cret',
        }),
      ],
      baseDir: cert.dir,
      memoryQueue: false,
    })
    servers.push(srv)
    const t = await transact(srv, 'a@src.test', ['u1@dest.test'], simpleBody('relative ca'))
    assert.equal(t.final?.code, 250, t.final?.raw)
    const [m] = (await sink.messages()).slice(-1)
    assert.equal(m?.tls, true)
  })

  it('an unverifiable certificate with tls_verify → 451 4.7.5', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: sink.port, tls: 'required' }))
    const t = await transact(srv, 'a@src.test', ['u1@dest.test'], simpleBody('tls'))
    assert.match(t.final?.raw ?? '', /^451 4\.7\.5 /)
  })

  it('wrong AUTH password → 451 4.7.0', async () => {
    const srv = await serve(
      smtpForward({ ...tlsOpts(), tls: 'required', auth_user: 'relayuser', auth_password: 'nope' }),
    )
    const t = await transact(srv, 'a@src.test', ['u1@dest.test'], simpleBody('auth'))
    assert.match(t.final?.raw ?? '', /^451 4\.7\.0 /)
  })

  it('tls none towards a hop that demands TLS: its 530 to MAIL is about our session → 451 4.7.0', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: sink.port, tls: 'none' }))
    const t = await transact(srv, 'a@src.test', ['u1@dest.test'], simpleBody('notls'))
    assert.match(t.final?.raw ?? '', /^451 4\.7\.0 /)
  })
})

/** A next hop that accepts everything, then closes the connection after `cutAfter` bytes of content. */
function dyingHop(cutAfter: number): Promise<{ port: number; server: Server; received: () => number }> {
  let bytes = 0
  const server = createServer((s: Socket) => {
    let inData = false
    s.write('220 dying.test ESMTP\r\n')
    s.on('data', (d) => {
      if (inData) {
        bytes += d.length
        if (bytes >= cutAfter) s.destroy()
        return
      }
      for (const line of d.toString('latin1').split('\r\n').filter(Boolean)) {
        if (/^EHLO/i.test(line)) s.write('250-dying.test\r\n250 PIPELINING\r\n')
        else if (/^DATA/i.test(line)) {
          inData = true
          s.write('354 go\r\n')
        } else if (/^QUIT/i.test(line)) s.end('221 bye\r\n')
        else s.write('250 ok\r\n')
      }
    })
    s.on('error', () => {})
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address()
      resolve({ port: typeof a === 'object' && a ? a.port : 0, server, received: () => bytes })
    }),
  )
}

describe('queue/smtp-forward → a next hop that dies mid-DATA', () => {
  it('answers 451 and streams (the hop saw part of a 3 MB message, never the end)', async () => {
    const hop = await dyingHop(200_000)
    try {
      const srv = await serve(smtpForward({ host: '127.0.0.1', port: hop.port, tls: 'none' }))
      const big = `${'x'.repeat(998)}\r\n`.repeat(3000)
      const t = await transact(srv, 'a@src.test', ['u1@dest.test'], simpleBody('big', big))
      assert.match(t.final?.raw ?? '', /^451 4\.4\.2 /)
      assert.ok(hop.received() >= 200_000 && hop.received() < 3_000_000, `hop got ${hop.received()} bytes`)
    } finally {
      hop.server.close()
    }
  })
})

describe('queue/smtp-forward → Postfix', () => {
  let pf: Postfix
  let cert: TestCertificate
  before(async () => {
    cert = await makeCertificate('localhost')
    // relay.test with mailboxes u1, u2 and temp @dest.test; temp gets 450 at RCPT, unknown users 550.
    pf = await startPostfix({
      main: {
        myhostname: 'relay.test',
        smtpd_recipient_restrictions: 'check_recipient_access texthash:{conf}/access, permit_mynetworks, reject',
        smtpd_authorized_xclient_hosts: '127.0.0.0/8',
        smtpd_authorized_xforward_hosts: '127.0.0.0/8',
        smtpd_tls_cert_file: cert.certFile,
        smtpd_tls_key_file: cert.keyFile,
        smtpd_tls_security_level: 'may',
      },
      files: { access: 'temp@dest.test 450 4.2.0 try later\n' },
      smtpd: [{}],
      // An smtpd on a Unix socket too: queue/public/smtp-unix.
      master: ['smtp-unix unix n - n - - smtpd'],
      maildir: ['u1@dest.test', 'u2@dest.test', 'temp@dest.test'],
    })
  })
  after(async () => {
    await pf?.stop()
    if (cert) await rm(cert.dir, { recursive: true, force: true })
  })

  it("delivers to a Postfix mailbox; the message's log line has Postfix's reply and queue id", async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: pf.port, tls: 'none', xforward: false }))
    const t = await transact(srv, 'a@src.test', ['u1@dest.test'], simpleBody('to postfix'))
    const [, id, postfixId] =
      /^250 2\.0\.0 Queued as (\S+) \(next hop: Ok: queued as (\w+)\)/.exec(t.final?.raw ?? '') ?? []
    assert.ok(id && postfixId, t.final?.raw)
    const [m] = await pf.mailbox('u1')
    assert.match(m ?? '', /Subject: to postfix/)
    assert.match(
      m ?? '',
      new RegExp(
        `Received: from mx\\.test \\(localhost \\[127\\.0\\.0\\.1\\]\\)\\n\\tby relay\\.test \\(Postfix\\) with ESMTP id ${postfixId}\\n`,
      ),
    )
    const line = srv.logs.find((e) => e.message.startsWith(`accepted id=${id} `))?.message
    assert.equal(
      line,
      `accepted id=${id} ip=127.0.0.1 helo=client.test from=<a@src.test> to=<u1@dest.test> size=${Buffer.byteLength(simpleBody('to postfix'))} ` +
        `msgid=- queue=queue/smtp-forward reply="250 2.0.0 Queued as ${id} (next hop: Ok: queued as ${postfixId})" ` +
        `results=[queue/smtp-forward:pass(127.0.0.1:${pf.port} said 250 2.0.0 Ok: queued as ${postfixId})]`,
    )
  })

  it("XCLIENT makes Postfix see our client: Postfix's own Received line names the client's HELO", async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: pf.port, tls: 'none', xclient: true }))
    // Two messages on one pooled session: XCLIENT and the client's EHLO are sent again for each.
    for (const [i, helo] of ['client.test', 'second.client.test'].entries()) {
      const c = await srv.connect()
      await c.expect(220)
      await c.send(`EHLO ${helo}`, 250)
      const t = await transact(srv, 'a@src.test', ['u2@dest.test'], simpleBody(`xclient ${i}`), { client: c })
      assert.equal(t.final?.code, 250)
      await c.quit()
      const m = (await pf.mailbox('u2', i + 1)).find((x) => x.includes(`Subject: xclient ${i}\n`)) ?? ''
      // The first field is Postfix's; ours (from the same client) follows it.
      const [first, second] = m.split(/\n(?=\S)/).filter((f) => f.startsWith('Received: '))
      assert.match(
        first ?? '',
        new RegExp(
          `^Received: from ${helo.replace(/\./g, '\\.')} \\(unknown \\[127\\.0\\.0\\.1\\]\\)\\s+by relay\\.test \\(Postfix\\) with ESMTP id \\w+`,
        ),
      )
      assert.match(
        second ?? '',
        new RegExp(
          `^Received: from ${helo.replace(/\./g, '\\.')} \\(unknown \\[127\\.0\\.0\\.1\\]\\)\\s+by mx\\.test \\(qtsmtpd\\)`,
        ),
      )
    }
  })

  it('a relative unix: next hop is taken from the install directory, not the working directory', async () => {
    const srv = await startTestServer({
      plugins: [acceptAllRecipients(), smtpForward({ host: 'unix:public/smtp-unix', tls: 'none' })],
      baseDir: pf.queueDir,
      memoryQueue: false,
    })
    servers.push(srv)
    const before = pf.messages('u2').length
    const t = await transact(srv, 'a@src.test', ['u2@dest.test'], simpleBody('over a unix socket'))
    assert.match(t.final?.raw ?? '', /^250 2\.0\.0 Queued as \S+ \(next hop: Ok: queued as \w+\)/)
    const all = await pf.mailbox('u2', before + 1)
    assert.ok(all.some((m) => m.includes('Subject: over a unix socket\n')))
  })

  it('unknown user → 550 5.1.1 from Postfix; 450 → our 450 4.2.0', async () => {
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: pf.port, tls: 'none' }))
    const t = await transact(srv, 'a@src.test', ['nobody@dest.test'], simpleBody('x'))
    assert.match(t.final?.raw ?? '', /^550 5\.1\.1 <nobody@dest\.test>: .*User unknown/)
    const t2 = await transact(srv, 'a@src.test', ['temp@dest.test'], simpleBody('x'))
    assert.match(t2.final?.raw ?? '', /^450 4\.2\.0 <temp@dest\.test>: .*try later/)
  })

  it('check_rcpt against Postfix, STARTTLS required and verified', async () => {
    const srv = await serve(
      smtpForward({
        host: '127.0.0.1',
        port: pf.port,
        tls: 'required',
        tls_ca: cert.certFile,
        tls_servername: 'localhost',
        check_rcpt: true,
      }),
      true,
    )
    const before = (await pf.mailbox('u1', 0)).length
    const t = await transact(srv, 'a@src.test', ['u1@dest.test', 'ghost@dest.test'], simpleBody('verified'))
    assert.equal(t.rcpts[0]?.code, 250)
    assert.match(t.rcpts[1]?.raw ?? '', /^550 5\.1\.1 /)
    assert.equal(t.final?.code, 250)
    const verified = (await pf.mailbox('u1', before + 1)).find((m) => m.includes('Subject: verified\n'))
    assert.match(verified ?? '', /by relay\.test \(Postfix\) with ESMTPS id/)
  })
})

describe('queue/smtp-forward arguments', () => {
  it('reads qpsmtpd `host [port] [xclient]`', () => {
    assert.deepEqual(translateXclientArg(['10.0.0.1', '2525', 'xclient']), ['10.0.0.1', '2525', 'xclient', '1'])
    assert.deepEqual(translateXclientArg(['10.0.0.1', 'xclient', '0']), ['10.0.0.1', 'xclient', '0'])
  })
  it('refuses a bad host at start-up', async () => {
    await assert.rejects(startTestServer({ plugins: [smtpForward({ host: 'bad host;' })] }))
  })
})

describe('queue/smtp-forward passes the DSN parameters on as received', () => {
  /** A next hop (qtsmtpd, which offers DSN) that records MAIL's and RCPT's parameters as they came. */
  const recorder = (seen: string[]) =>
    definePlugin({
      name: 'test/param-recorder',
      options: {},
      setup: () => ({
        hooks: {
          mailParse: (_ctx, raw) => {
            seen.push(`MAIL ${raw.params}`)
            return pass()
          },
          rcptParse: (_ctx, raw) => {
            seen.push(`RCPT ${raw.params}`)
            return pass()
          },
        },
      }),
    })()

  it('ENVID and ORCPT byte for byte (RFC 3461 §4.4, §5.2.1), RET and NOTIFY', async () => {
    const seen: string[] = []
    const hop = await startTestServer({ plugins: [recorder(seen), acceptAllRecipients()] })
    servers.push(hop)
    const srv = await serve(smtpForward({ host: '127.0.0.1', port: hop.port, tls: 'none' }))
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    // +7E is a needless encoding of ~ and +2B the required one of +: neither may change.
    await c.send('MAIL FROM:<a@src.test> RET=HDRS ENVID=id+7E1+2Bx', 250)
    await c.send('RCPT TO:<u1@dest.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u1+2Bold@dest.test', 250)
    await c.send('DATA', 354)
    await c.send(`${simpleBody('dsn')}.`, /^250 /)
    await c.quit()
    assert.equal(seen.length, 2)
    assert.match(seen[0] ?? '', /^MAIL SIZE=\d+ RET=HDRS ENVID=id\+7E1\+2Bx$/)
    assert.equal(seen[1], 'RCPT NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u1+2Bold@dest.test')
    assert.equal(hop.queued[0]?.from, 'a@src.test')
  })
})
