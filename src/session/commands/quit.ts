/** QUIT (RFC 5321 §4.1.1.10): 221, then the connection closes whatever the quit hook says. */
import { reply } from '../../protocol/reply.ts'
import type { SessionCore } from '../session-core.ts'

export async function quit(s: SessionCore): Promise<void> {
  const { verdict } = await s.runner.chain('quit', s)
  if (verdict.kind === 'done') return s.close()
  return s.close(reply(221, '2.0.0', `${s.settings.me} closing connection`))
}
