/**
 * A recipient plugin for tests that accepts every address, so a test of another plugin (or of
 * the SMTP engine) is not about relay policy. Never for production: it makes an open relay.
 */
import { definePlugin } from '../host/define-plugin.ts'
import { accept } from '../host/verdict.ts'

/**
 * rcpt: accepts every recipient.
 *
 * @example
 * const srv = await startTestServer({ plugins: [acceptAllRecipients(), myQueue()] })
 */
export const acceptAllRecipients = definePlugin({
  name: 'test/accept-all-recipients',
  description: 'accepts every recipient (tests only: an open relay)',
  options: {},
  setup: () => ({ hooks: { rcpt: async () => accept() } }),
})
