import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Karma } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { accept } from '../../host/verdict.ts'
import { startTestServer } from '../../testing/index.ts'
import dontRequireAnglebrackets from './dont-require-anglebrackets.ts'

/** Accepts every recipient and records the connection's karma when it does. */
function karmaProbe(seen: number[]) {
  return definePlugin({
    name: 'test/karma-probe',
    options: {},
    setup: () => ({
      hooks: {
        rcpt: (ctx) => {
          seen.push(ctx.get(Karma))
          return accept()
        },
      },
    }),
  })()
}

async function run(strict: boolean, withPlugin: boolean) {
  const karma: number[] = []
  const srv = await startTestServer({
    plugins: [...(withPlugin ? [dontRequireAnglebrackets()] : []), karmaProbe(karma)],
    policies: { strictEnvelopes: strict },
  })
  try {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.example', 250)
    const mail = await c.send('MAIL FROM:s@client.example SIZE=100', /^(250|501) /)
    const rcpt = mail?.code === 250 ? await c.send('RCPT TO:u@local.test', /^(250|501) /) : undefined
    const bracketed = mail?.code === 250 ? await c.send('RCPT TO:<v@local.test>', 250) : undefined
    if (rcpt?.code === 250) {
      await c.send('DATA', 354)
      await c.send('Subject: t\r\n\r\nhi\r\n.', 250)
    }
    await c.quit()
    return { mail: mail?.raw, rcpt: rcpt?.raw, bracketed: bracketed?.raw, karma, queued: srv.queued }
  } finally {
    await srv.close()
  }
}

describe('helo/dont-require-anglebrackets', () => {
  it('strict mode without the plugin: bare paths are refused', async () => {
    const r = await run(true, false)
    assert.equal(r.mail, '501 5.1.7 Bad sender address syntax: address must be enclosed in "<" and ">"\r\n')
  })

  it('strict mode with the plugin: bare paths are wrapped, karma -2 each', async () => {
    const r = await run(true, true)
    assert.equal(r.mail, '250 2.1.0 Sender OK\r\n')
    assert.equal(r.rcpt, '250 2.1.5 Recipient OK\r\n')
    // -2 for MAIL, -2 for the bare RCPT; the bracketed RCPT costs nothing.
    assert.deepEqual(r.karma, [-4, -4])
    assert.equal(r.queued.length, 1)
    assert.equal(r.queued[0]?.from, 's@client.example')
    assert.deepEqual(r.queued[0]?.to, ['u@local.test', 'v@local.test'])
  })

  it('lenient mode without the plugin: the core takes bare paths, no karma change', async () => {
    const r = await run(false, false)
    assert.equal(r.rcpt, '250 2.1.5 Recipient OK\r\n')
    assert.deepEqual(r.karma, [0, 0])
  })

  it('lenient mode with the plugin: same result, karma -2 each', async () => {
    const r = await run(false, true)
    assert.equal(r.rcpt, '250 2.1.5 Recipient OK\r\n')
    assert.deepEqual(r.karma, [-4, -4])
    assert.deepEqual(r.queued[0]?.to, ['u@local.test', 'v@local.test'])
  })

  it('a wrapped path is still checked by the path parser', async () => {
    const srv = await startTestServer({
      plugins: [dontRequireAnglebrackets(), karmaProbe([])],
      policies: { strictEnvelopes: true },
    })
    try {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.example', 250)
      await c.send('MAIL FROM:<>', 250)
      await c.send('RCPT TO:a@b@local.test', /^501 5\.1\.3 /)
      await c.send('RCPT TO:<u@local.test', /^501 5\.1\.3 /)
      await c.send('RCPT TO: <u@local.test>', /^501 5\.1\.3 Bad recipient address syntax: no space allowed/)
      await c.send('RSET', 250)
      // An empty path becomes the null sender, as in qpsmtpd.
      await c.send('MAIL FROM:', '250 2.1.0 ')
      await c.quit()
    } finally {
      await srv.close()
    }
  })
})
