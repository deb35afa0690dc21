/**
 * Running a program for a plugin (a local MTA's injection program such as qmail-queue or
 * exim -bS, a scanner's command-line client): always an argument vector (spawn, never a shell),
 * a hard time limit, an AbortSignal, output kept up to a bound, and the outcome as a value
 * (exit code, signal, timed out, failed to start), never an exception.
 * Security: data only ever reaches the child as bytes on a descriptor or as separate argv
 * items (see security.md §1.17); nothing is interpreted by a shell.
 */
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process'
import { constants as fsConstants } from 'node:fs'
import { access, stat } from 'node:fs/promises'
import { delimiter, join, resolve as resolvePath } from 'node:path'

/** How a relative path from the configuration becomes absolute (the host's `api.paths`). */
export interface PathResolver {
  resolve(path: string): string
}

export interface ChildOutcome {
  readonly pid: number | undefined
  /** Exit code, or undefined when killed by a signal or never started. */
  readonly code: number | undefined
  readonly signal: NodeJS.Signals | undefined
  readonly timedOut: boolean
  /** Set when the program could not be started (ENOENT, EACCES...). */
  readonly spawnError: Error | undefined
  /** What the child wrote on its stdout/stderr pipes, each capped at `maxOutput` bytes. */
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  readonly argv: readonly string[]
  readonly stdio: StdioOptions
  readonly timeoutMs: number
  readonly signal?: AbortSignal
  readonly env?: NodeJS.ProcessEnv
  readonly maxOutput?: number
  /** Called once the child is spawned, to feed its input; errors are ignored (the exit code decides). */
  readonly feed?: (child: ChildProcess) => Promise<void>
}

/**
 * The executable a configured program names: a path with a slash is taken from the install
 * directory when relative (`paths.resolve`, as every path in the configuration); a bare name is
 * looked up in PATH, as a shell would. Undefined when nothing executable is there.
 */
export async function findProgram(configured: string, paths: PathResolver): Promise<string | undefined> {
  const candidates = configured.includes('/')
    ? [paths.resolve(configured)]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter((dir) => dir !== '')
        .map((dir) => resolvePath(join(dir, configured)))
  for (const candidate of candidates) {
    const runnable = await access(candidate, fsConstants.X_OK).then(
      () => stat(candidate).then((s) => s.isFile()),
      () => false,
    )
    if (runnable) return candidate
  }
  return undefined
}

/** Runs argv[0] with argv[1..]; resolves when the child has exited and `feed` has settled. */
export function runChild(opts: RunOptions): Promise<ChildOutcome & { readonly feedError: Error | undefined }> {
  const max = opts.maxOutput ?? 16_384
  return new Promise((resolve) => {
    const [file, ...args] = opts.argv
    let child: ChildProcess
    try {
      child = spawn(file as string, args, { stdio: opts.stdio, env: opts.env ?? process.env, shell: false })
    } catch (e) {
      resolve(none(e as Error))
      return
    }
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => {
      if (stdout.length < max) stdout += d.toString('latin1').slice(0, max - stdout.length)
    })
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < max) stderr += d.toString('latin1').slice(0, max - stderr.length)
    })
    let timedOut = false
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    const timer = setTimeout(() => {
      timedOut = true
      kill()
    }, opts.timeoutMs)
    opts.signal?.addEventListener('abort', kill, { once: true })
    let feedError: Error | undefined
    const fed =
      opts.feed === undefined
        ? Promise.resolve()
        : opts.feed(child).catch((e: Error) => {
            feedError = e
          })
    let spawnError: Error | undefined
    child.on('error', (e) => {
      spawnError = e
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', kill)
      // A child that exits early leaves our writer with EPIPE; wait for it to settle either way.
      void fed.then(() =>
        resolve({
          pid: child.pid,
          code: spawnError === undefined ? (code ?? undefined) : undefined,
          signal: signal ?? undefined,
          timedOut,
          spawnError,
          stdout,
          stderr,
          feedError,
        }),
      )
    })
  })
}

const none = (e: Error) => ({
  pid: undefined,
  code: undefined,
  signal: undefined,
  timedOut: false,
  spawnError: e,
  stdout: '',
  stderr: '',
  feedError: undefined,
})
