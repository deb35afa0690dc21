/**
 * logging/devnull: drops every log entry (qpsmtpd `logging/devnull`). Loading any logging plugin
 * replaces the built-in stderr output, so this one silences qtsmtpd. Start-up problems still stop
 * the start with their message on stderr, and `--check` still prints its warnings.
 */
import { definePlugin } from '../../host/define-plugin.ts'

export default definePlugin({
  name: 'logging/devnull',
  description: 'drop every log entry',
  options: {},
  setup: () => ({ hooks: { logging: () => {} } }),
})
