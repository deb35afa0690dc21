/**
 * `qtsmtpd --stdio`: the qmail-smtpd drop-in. Under the real tcpserver (Debian ucspi-tcp) a
 * full dialogue delivers a message whose Received header names the client tcpserver saw;
 * RELAYCLIENT from tcprules makes the client a relay client. Without the UCSPI environment
 * (inetd, systemd Accept=yes) the client address comes from the socket on fd 0; over plain
 * pipes the environment alone describes the client.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { freePort } from '../peers/free-port.ts'
import { sClient } from '../peers/openssl-s-client.ts'
import { bin, installCertificate, makeConfig } from './harness.ts'

const cleanup: (() => void)[] = []
after(() => {
  for (const f of cleanup.reverse()) f()
})

async function connectRetry(port: number): Promise<SmtpTestClient> {
  for (let i = 0; i < 100; i++) {
    const c = await SmtpTestClient.connect(port).catch(() => undefined)
    if (c !== undefined) return c
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`nothing listens on ${port}`)
}

async function dialogue(c: SmtpTestClient, rcpt: string, rcptReply: RegExp): Promise<void> {
  await c.expect(/^220 mx\.test /, 15_000)
  await c.send('EHLO client.test', 250)
  await c.send('MAIL FROM:<a@client.test>', 250)
  const r = await c.send(`RCPT TO:<${rcpt}>`, rcptReply)
  if (r?.code === 250) {
    await c.send('DATA', 354)
    await c.send('Subject: via stdio\r\n\r\nhello over tcpserver\r\n.', /^250 2\.0\.0 Queued as /)
  }
  await c.send('QUIT', 221)
  await c.closed()
}

function startTcpserver(port: number, configDir: string, extra: string[] = []) {
  const child = spawn(
    'tcpserver',
    [
      '-v',
      '-R',
      '-c',
      '10',
      ...extra,
      '127.0.0.1',
      String(port),
      process.execPath,
      bin,
      '--stdio',
      '--config',
      configDir,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let log = ''
  child.stderr.on('data', (d: Buffer) => {
    log += d.toString()
  })
  cleanup.push(() => child.kill('SIGKILL'))
  return { child, log: () => log }
}

describe('--stdio', { timeout: 60_000 }, () => {
  test('under tcpserver: a full dialogue delivers, and the Received header names the client', async () => {
    const cfg = makeConfig(['relay', 'rcpt_ok'])
    cleanup.push(cfg.remove)
    const port = await freePort()
    const tcp = startTcpserver(port, cfg.config, ['-h'])
    const c = await connectRetry(port)
    await dialogue(c, 'u@example.com', /^250 /)
    const [msg] = cfg.messages()
    assert.ok(msg !== undefined, `a message was delivered; tcpserver log:\n${tcp.log()}`)
    // tcpserver -h looked up the PTR name (TCPREMOTEHOST) and the port came from TCPREMOTEPORT.
    assert.match(msg, /^Received: from client\.test \(\S+ \[127\.0\.0\.1\]\)/)
    assert.match(msg, /hello over tcpserver/)
    // Not a relay client without RELAYCLIENT.
    const c2 = await connectRetry(port)
    await dialogue(c2, 'someone@elsewhere.test', /^550 5\.7\.1 /)
    assert.match(tcp.log(), /tcpserver: ok \d+ .*127\.0\.0\.1/)
  })

  test('under tcpserver with tcprules: RELAYCLIENT makes the client a relay client', async () => {
    const cfg = makeConfig(['relay', 'rcpt_ok'])
    cleanup.push(cfg.remove)
    const rules = join(cfg.dir, 'rules')
    writeFileSync(`${rules}.txt`, '127.0.0.1:allow,RELAYCLIENT=""\n:allow\n')
    execFileSync('sh', ['-c', `tcprules ${rules}.cdb ${rules}.tmp < ${rules}.txt`])
    const port = await freePort()
    startTcpserver(port, cfg.config, ['-H', '-x', `${rules}.cdb`])
    const c = await connectRetry(port)
    await dialogue(c, 'someone@elsewhere.test', /^250 /)
    assert.equal(cfg.messages().length, 1)
    assert.match(cfg.messages()[0] ?? '', /^Received: from client\.test \(unknown \[127\.0\.0\.1\]\)/)
  })

  test('under tcpserver, STARTTLS (openssl s_client): the session ends with a TLS close_notify', async () => {
    const cfg = makeConfig(['tls', 'rcpt_ok'])
    cleanup.push(cfg.remove)
    await installCertificate(cfg)
    const port = await freePort()
    const tcp = startTcpserver(port, cfg.config, ['-H'])
    await connectRetry(port).then((c) => c.quit())
    const client = sClient(port, { starttls: true, servername: 'mx.test' })
    cleanup.push(client.kill)
    client.send('EHLO client.test')
    await client.waitFor(/^250 /m)
    client.send('QUIT')
    const { code, out, err } = await client.exited()
    assert.match(out, /^221 /m)
    assert.equal(code, 0, err)
    // Exiting right after the session would cut off the close_notify TLS sends after the 221.
    assert.doesNotMatch(err, /unexpected eof/)
    assert.match(tcp.log(), /summary ip=127\.0\.0\.1 helo=client\.test tls=TLSv1\.3 /)
  })

  test('inetd or systemd Accept=yes: no environment, the client comes from the socket on fd 0', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const env = { ...process.env }
    for (const k of Object.keys(env)) if (k.startsWith('TCP') || k === 'RELAYCLIENT') delete env[k]
    let exited: Promise<number | null> = Promise.resolve(null)
    const inetd = createServer({ pauseOnConnect: true }, (sock: Socket) => {
      const child = spawn(process.execPath, [bin, '--stdio', '--config', cfg.config], {
        stdio: [sock, sock, 'inherit'],
        env,
      })
      exited = new Promise((r) => child.once('exit', (code) => r(code)))
      sock.destroy()
    })
    await new Promise<void>((r) => inetd.listen(0, '127.0.0.1', () => r()))
    cleanup.push(() => inetd.close())
    const c = await SmtpTestClient.connect((inetd.address() as { port: number }).port, '127.0.0.1')
    await dialogue(c, 'u@example.com', /^250 /)
    assert.equal(await exited, 0)
    assert.match(cfg.messages()[0] ?? '', /^Received: from client\.test \(unknown \[127\.0\.0\.1\]\)/)
  })

  test('over pipes, the UCSPI environment describes the client', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const child = spawn(process.execPath, [bin, '--stdio', '--config', cfg.config], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: {
        ...process.env,
        TCPREMOTEIP: '192.0.2.44',
        TCPREMOTEPORT: '40000',
        TCPREMOTEHOST: 'client.example',
        TCPLOCALIP: '192.0.2.1',
        TCPLOCALPORT: '25',
      },
    })
    cleanup.push(() => child.kill('SIGKILL'))
    const exited = new Promise((r) => child.once('exit', r))
    let out = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (d: string) => {
      out += d
    })
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 150 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 100))
      assert.match(out, re)
    }
    await waitFor(/^220 /)
    child.stdin.write('EHLO client.test\r\n')
    await waitFor(/250 /)
    child.stdin.write('MAIL FROM:<a@client.test>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n')
    await waitFor(/354 /)
    child.stdin.write('Subject: pipes\r\n\r\nhi\r\n.\r\n')
    await waitFor(/250 2\.0\.0 Queued/)
    child.stdin.write('QUIT\r\n')
    await waitFor(/221 /)
    assert.equal(await exited, 0)
    assert.match(cfg.messages()[0] ?? '', /^Received: from client\.test \(client\.example \[192\.0\.2\.44\]\)/)
  })
})
