/**
 * Test helpers for plugin authors: a real server on an ephemeral port, a raw client, and fakes
 * for the services plugins get (scripted DNS, a memory store, a clock moved by hand, a metrics
 * registry to read).
 */

export { type FakeClock, fakeClock } from '../clock/index.ts'
export { type ScriptedDns, type ScriptedDnsOptions, type ScriptedName, scriptedDns } from '../dns/index.ts'
export { type MemoryMetrics, memoryMetrics } from '../metrics/index.ts'
export { Replies } from '../session/replies.ts'
export { memoryStore } from '../store/index.ts'
export { acceptAllRecipients } from './accept-all-recipients.ts'
export { makeCertificate, type TestCertificate } from './certs.ts'
export { matches, type ReplyMatcher, type SmtpReply, SmtpTestClient } from './client.ts'
export { createMemoryQueue, type QueuedMessage } from './memory-queue.ts'
export { type ScramLoginOptions, type ScramLoginResult, scramLogin } from './scram.ts'
export { startTestServer, type TestServer, type TestServerOptions } from './test-server.ts'
export { openSession, withTestServer } from './with-test-server.ts'
