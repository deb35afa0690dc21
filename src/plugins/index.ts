/** The built-in plugins, each loadable by its name and its qpsmtpd name. */
import type { AnyPluginFactory } from '../host/loader.ts'
import tls from './tls.ts'

export const builtinPlugins: readonly AnyPluginFactory[] = [tls as unknown as AnyPluginFactory]
