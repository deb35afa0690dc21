/**
 * The DNS layer: build one service per process with createDnsService(config) and hand it to
 * every plugin; tests use scriptedDns. docs/dns.md says what operators and plugin authors see.
 */
export { createDnsCache, type DnsCacheOptions, defaultCacheOptions } from './cache.ts'
export {
  createDnsService,
  type DnsSettings,
  dnsSettingKeys,
  parseResolvConf,
  parseServer,
  readDnsServers,
  readDnsSettings,
} from './config.ts'
export {
  type ScriptedDns,
  type ScriptedDnsOptions,
  type ScriptedName,
  type ScriptedRecords,
  scriptedDns,
} from './scripted.ts'
export { createStubResolver, defaultStubOptions, type StubResolver, type StubResolverOptions } from './stub-resolver.ts'
export type { DnsServer } from './transport.ts'
export type {
  DnsAnswer,
  DnsAnswerKind,
  DnsResolver,
  DnsService,
  DnsStats,
  QueryOptions,
  RecordData,
  RecordType,
  UpstreamStats,
} from './types.ts'
