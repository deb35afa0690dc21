/**
 * One rule for relative paths in the configuration, for the core (`spool_dir`, `plugin_dirs`)
 * and every plugin (`queue/maildir ./var/maildir`, `tls ssl/cert.pem`, ...): a relative path is
 * taken from the directory that holds the configuration directory (qpsmtpd's install
 * directory), never from the working directory, which is `/` under systemd.
 */
import { resolve } from 'node:path'

export interface Paths {
  /** The directory relative paths are taken from: the one holding the config directory. */
  readonly base: string
  /**
   * An absolute path as it is; a relative one taken from `base`.
   *
   * @example
   *   // config in /srv/qtsmtpd/config: 'var/maildir' → '/srv/qtsmtpd/var/maildir'
   *   const root = paths.resolve(options.path)
   */
  resolve(path: string): string
}

export function pathsFrom(base: string): Paths {
  const root = resolve(base)
  return { base: root, resolve: (path) => resolve(root, path) }
}
