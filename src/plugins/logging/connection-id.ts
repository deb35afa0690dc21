/**
 * logging/connection_id: log entries to stderr led by the session id, `<session> <plugin> plugin:
 * <message>` (qpsmtpd `logging/connection_id [loglevel]`; qpsmtpd 0.94 refuses to load it,
 * "The connection ID feature is currently unsupported"). `???` outside a session.
 */
import { definePlugin } from '../../host/define-plugin.ts'
import { idLogger } from './session-ids.ts'

export default definePlugin(
  idLogger(
    'logging/connection-id',
    'logging/connection_id',
    'log entries to stderr led by the session id',
    (e) => e.connection,
  ),
)
