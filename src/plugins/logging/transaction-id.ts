/**
 * logging/transaction_id: log entries to stderr led by the transaction's queue id, `<id> <plugin>
 * plugin: <message>` (qpsmtpd `logging/transaction_id [loglevel]`; qpsmtpd 0.94 refuses to load
 * it, "The transaction ID feature is currently unsupported"). `???` for entries outside a
 * transaction: the connect, HELO and AUTH hooks, the summary line.
 */
import { definePlugin } from '../../host/define-plugin.ts'
import { idLogger } from './session-ids.ts'

export default definePlugin(
  idLogger(
    'logging/transaction-id',
    'logging/transaction_id',
    'log entries to stderr led by the queue id',
    (e) => e.transaction,
  ),
)
