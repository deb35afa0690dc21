/** The store service: the contract, its implementations, and opening one from the setting. */
export { type MemoryStoreOptions, memoryStore } from './memory.ts'
export { type OpenStoreOptions, openStore } from './open.ts'
export { openPluginStore, type PluginStoreArgs, pluginStoreSetting } from './plugin-store.ts'
export { type RedisStoreOptions, redisStore } from './redis.ts'
export { parseStoreSpec, type RedisSpec, type StoreSpec, StoreSpecError } from './spec.ts'
export { type SqliteStoreOptions, sqliteStore } from './sqlite.ts'
export { StoreFileError } from './sqlite-file.ts'
export {
  borrowedStore,
  type LeaseResult,
  type Store,
  type StoreEntry,
  StoreUnavailable,
  type WriteOptions,
} from './store.ts'
