/**
 * Process exit codes (documented in docs/running.md). A cluster primary that stops because
 * its first workers could not start exits with the workers' code.
 */
export const ExitCode = {
  /** Stopped by SIGTERM/SIGINT (drained, or a second signal), or --check/--version/--help. */
  ok: 0,
  /** Bad command-line arguments. */
  usage: 1,
  /** The configuration could not be loaded (a ConfigError names file and line). */
  config: 2,
  /** A listener could not be bound (address in use, no permission, bad systemd socket). */
  listen: 3,
  /** --user/--group unknown, or the privilege drop failed or was not possible. */
  privileges: 4,
  /**
   * An uncaught exception or unhandled rejection (a bug): the process drained and exited so
   * that a fresh one takes over (sysexits EX_SOFTWARE). bin/qtsmtpd uses 5 for "no Node.js 24".
   */
  internal: 70,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]
