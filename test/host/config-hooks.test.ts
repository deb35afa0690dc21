/**
 * qpsmtpd's config and user_config hooks: a plugin answers configuration lookups for the
 * plugins loaded after it, globally (`config`) and per recipient (`userConfig`).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { accept, reject } from '../../src/host/verdict.ts'
import { formatAddress } from '../../src/protocol/envelope.ts'
import { startTestServer } from '../../src/testing/index.ts'

const settingsFromElsewhere = definePlugin({
  name: 'test/config-source',
  options: {},
  setup: () => ({
    hooks: {
      config: (key) => (key === 'vip_domains' ? ['virtual.test'] : undefined),
      userConfig: (address, key) => (key === 'accept_mail' && address === 'bob@virtual.test' ? ['no'] : undefined),
    },
  }),
})

const vip = definePlugin({
  name: 'test/vip-domains',
  options: {},
  setup({ config }) {
    const domains = new Set(config.lines('vip_domains'))
    return {
      hooks: {
        rcpt: (_ctx, to) => {
          if (!domains.has(to.address.domain ?? '')) return reject('not a vip domain')
          const wants = config.forUser(formatAddress(to.address), 'accept_mail')[0] ?? 'yes'
          return wants === 'yes' ? accept() : reject({ code: 550, enhanced: '5.2.1', text: 'Mailbox disabled' })
        },
      },
    }
  },
})

describe('config and user_config hooks', () => {
  it('answer for later plugins, at set-up and per user, over the flat files', async () => {
    const srv = await startTestServer({
      plugins: [settingsFromElsewhere(), vip()],
      config: { accept_mail: ['yes'] },
    })
    try {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      await c.send('MAIL FROM:<s@sender.test>', 250)
      assert.equal((await c.send('RCPT TO:<alice@virtual.test>', 250))?.raw, '250 2.1.5 Recipient OK\r\n')
      assert.equal((await c.send('RCPT TO:<bob@virtual.test>', 550))?.raw, '550 5.2.1 Mailbox disabled\r\n')
      assert.equal((await c.send('RCPT TO:<carol@other.test>', 550))?.raw, '550 5.7.1 not a vip domain\r\n')
    } finally {
      await srv.close()
    }
  })
})
