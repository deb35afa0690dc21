/** A start that cannot go on, with the exit code it ends with (docs/running.md). */
import type { ExitCode } from './exit-codes.ts'

export class StartupError extends Error {
  readonly code: ExitCode
  constructor(code: ExitCode, message: string) {
    super(message)
    this.code = code
  }
}
