/** Test helpers for plugin authors: a real server on an ephemeral port and a raw client. */

export { Replies } from '../session/replies.ts'
export { acceptAllRecipients } from './accept-all-recipients.ts'
export { makeCertificate, type TestCertificate } from './certs.ts'
export { matches, type ReplyMatcher, type SmtpReply, SmtpTestClient } from './client.ts'
export { createMemoryQueue, type QueuedMessage } from './memory-queue.ts'
export { startTestServer, type TestServer, type TestServerOptions } from './test-server.ts'
export { openSession, withTestServer } from './with-test-server.ts'
