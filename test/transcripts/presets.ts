/**
 * Named plugin presets for golden transcripts (`# settings: {"plugins": ["local-only"]}`) and the
 * protocol suites. Each is a tiny inline plugin, so a transcript tests the engine, not a plugin.
 */
import type { PluginChoice } from '../../src/host/define-plugin.ts'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { accept, defer, pass, reject } from '../../src/host/verdict.ts'
import { acceptAllRecipients } from '../../src/testing/index.ts'

/** Accepts recipients in local.test only; the core refuses the rest (550 5.7.1 Relaying denied). */
export const localOnly = definePlugin({
  name: 'test/local-only',
  options: {},
  setup: () => ({
    hooks: { rcpt: async (_ctx, to) => (to.address?.domain?.toLowerCase() === 'local.test' ? accept() : pass()) },
  }),
})

/** `reject@…` gets 550, `defer@…` gets 450, `bye@…` gets 421 and a close; everyone else is accepted. */
export const rcptVerdicts = definePlugin({
  name: 'test/rcpt-verdicts',
  options: {},
  setup: () => ({
    hooks: {
      rcpt: async (_ctx, to) => {
        const local = to.address?.local ?? ''
        if (local === 'reject') return reject({ code: 550, enhanced: '5.1.1', text: 'No such user' })
        if (local === 'defer') return defer('Mailbox busy')
        if (local === 'bye') return defer('Go away', { disconnect: true })
        return accept()
      },
    },
  }),
})

/** Sender `reject@…` gets 550 at MAIL; sender `nodata@…` gets 554 at DATA/BDAT (the data hook). */
export const senderVerdicts = definePlugin({
  name: 'test/sender-verdicts',
  options: {},
  setup: () => ({
    hooks: {
      mail: async (_ctx, from) =>
        from.address?.local === 'reject' ? reject({ code: 550, enhanced: '5.7.1', text: 'Sender refused' }) : pass(),
      data: async (ctx) => (ctx.transaction.mailFrom.address?.local === 'nodata' ? reject('No data from you') : pass()),
    },
  }),
})

/** AUTH PLAIN and LOGIN for user `u` with password `p`; anyone else gets 535. */
export const authUser = definePlugin({
  name: 'test/auth-user',
  options: {},
  setup: () => ({
    hooks: { auth: async (_ctx, cred) => (cred.user === 'u' && cred.password === 'p' ? accept() : reject()) },
  }),
})

export const presets: Readonly<Record<string, () => PluginChoice>> = {
  'accept-all': () => acceptAllRecipients(),
  'auth-user': () => authUser(),
  'local-only': () => localOnly(),
  'rcpt-verdicts': () => rcptVerdicts(),
  'sender-verdicts': () => senderVerdicts(),
}

export function pluginsFromPresets(names: readonly string[]): PluginChoice[] {
  return names.map((n) => {
    const make = presets[n]
    if (make === undefined) throw new Error(`unknown plugin preset ${JSON.stringify(n)}`)
    return make()
  })
}
