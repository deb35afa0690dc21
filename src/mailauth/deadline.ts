/**
 * A hook's signal with a deadline of the plugin's own on top. AbortSignal.timeout() cannot be
 * stopped: every message would leave a timer that fires later and builds a DOMException (2 %
 * of the dkim workload's profile); this one is cleared when the work is done.
 */
export interface Deadline {
  readonly signal: AbortSignal
  /** True when the deadline (not the hook's signal) ended the work. */
  readonly expired: boolean
  clear(): void
}

export function deadline(hookSignal: AbortSignal, ms: number): Deadline {
  const controller = new AbortController()
  let expired = false
  const onAbort = () => controller.abort(hookSignal.reason)
  if (hookSignal.aborted) onAbort()
  else hookSignal.addEventListener('abort', onAbort, { once: true })
  const timer = setTimeout(() => {
    expired = true
    controller.abort(new Error(`deadline of ${ms} ms`))
  }, ms)
  return {
    signal: controller.signal,
    get expired() {
      return expired
    },
    clear() {
      clearTimeout(timer)
      hookSignal.removeEventListener('abort', onAbort)
    },
  }
}
