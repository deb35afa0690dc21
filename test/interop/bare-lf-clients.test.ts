/**
 * Clients that send a Unix file's bare LF line ends as they are, as the README warns: `curl -T`
 * and Python's `smtplib.sendmail()` with bytes. By default (`bare_line_endings reject`) they get
 * `554 5.6.0` and nothing is stored; `curl --crlf` and `sendmail()` with a str are delivered;
 * `bare_line_endings normalize` stores the same message with CRLF.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { acceptAllRecipients, startTestServer, type TestServer } from '../../src/testing/index.ts'
import { explain, runClient, skipUnless, withoutOwnReceived } from './helpers.ts'

const CURL = '/usr/bin/curl'
const PYTHON = '/usr/bin/python3'
const unixText = 'Subject: from a Unix file\n\nhello\n'
const asCrlf = Buffer.from(unixText.replaceAll('\n', '\r\n'))
const refused = '554 5.6.0 Error: message contains bare <CR> or <LF>; lines must end with <CR><LF>'

const sendmailScript = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
text = ${JSON.stringify(unixText)}
try:
    s.sendmail('a@client.test', ['u@mx.test'], text if sys.argv[2] == 'str' else text.encode())
    print('sent')
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
`

describe('clients that send bare LF', () => {
  let dir: string
  let file: string
  const servers: TestServer[] = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-bare-lf-'))
    file = join(dir, 'unixfile')
    await writeFile(file, unixText)
  })
  after(async () => {
    for (const s of servers) await s.close()
    await rm(dir, { recursive: true, force: true })
  })
  const serve = async (normalize = false): Promise<TestServer> => {
    const srv = await startTestServer({
      plugins: [acceptAllRecipients()],
      ...(normalize ? { policies: { bareLineEndings: 'normalize' as const } } : {}),
    })
    servers.push(srv)
    return srv
  }
  const curl = (srv: TestServer, ...flags: string[]) =>
    runClient(CURL, [
      '-sS',
      '-v',
      ...flags,
      '--url',
      `smtp://127.0.0.1:${srv.port}`,
      '--mail-from',
      'a@client.test',
      '--mail-rcpt',
      'u@mx.test',
      '-T',
      file,
    ])

  test('curl -T unixfile: 554, nothing stored; curl --crlf: delivered with CRLF', {
    skip: skipUnless(CURL, 'curl'),
  }, async () => {
    const srv = await serve()
    const plain = await curl(srv)
    assert.ok(plain.stderr.includes(`< ${refused}`), explain(plain))
    assert.equal(srv.queued.length, 0)

    const crlf = await curl(srv, '--crlf')
    assert.equal(crlf.code, 0, explain(crlf))
    assert.equal(srv.queued.length, 1)
    assert.deepEqual(withoutOwnReceived(srv.queued[0]?.data ?? Buffer.alloc(0)), asCrlf)
  })

  test('with bare_line_endings normalize, curl -T unixfile is stored with CRLF', {
    skip: skipUnless(CURL, 'curl'),
  }, async () => {
    const srv = await serve(true)
    const r = await curl(srv)
    assert.equal(r.code, 0, explain(r))
    // curl ends the data with CRLF.CRLF and, the file not ending in CRLF, a CRLF before it.
    const stored = Buffer.concat([asCrlf, Buffer.from('\r\n')])
    assert.deepEqual(withoutOwnReceived(srv.queued[0]?.data ?? Buffer.alloc(0)), stored)
  })

  test('Python smtplib.sendmail: bytes with LF get 554, a str is sent with CRLF', {
    skip: skipUnless(PYTHON, 'python3'),
  }, async () => {
    const srv = await serve()
    const bytes = await runClient(PYTHON, ['-c', sendmailScript, String(srv.port), 'bytes'])
    assert.equal(bytes.stdout, `${refused}\n`, explain(bytes))
    assert.equal(srv.queued.length, 0)
    const str = await runClient(PYTHON, ['-c', sendmailScript, String(srv.port), 'str'])
    assert.equal(str.stdout, 'sent\n', explain(str))
    assert.deepEqual(withoutOwnReceived(srv.queued[0]?.data ?? Buffer.alloc(0)), asCrlf)
  })
})
