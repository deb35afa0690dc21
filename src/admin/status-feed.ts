/**
 * The status page's live updates: server-sent events, one `status` event per
 * admin_update_interval while at least one page is open, nothing when none is. Pages that ask
 * for the same page of sessions share one collection per tick; at most admin_sse_clients
 * streams are open (more get 503), so the cost is bounded whatever the number of browsers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AdminBackend } from './backend.ts'
import type { StatusQuery } from './report.ts'
import { statusView } from './status-view.ts'

interface Client {
  readonly res: ServerResponse
  readonly query: StatusQuery
}

export class StatusFeed {
  readonly #backend: AdminBackend
  readonly #clients = new Set<Client>()
  #timer: NodeJS.Timeout | undefined
  #ticking = false

  constructor(backend: AdminBackend) {
    this.#backend = backend
  }

  get clients(): number {
    return this.#clients.size
  }

  /** Opens a stream for this request, or answers 503 when admin_sse_clients are open. */
  open(req: IncomingMessage, res: ServerResponse, query: StatusQuery, headers: Record<string, string>): void {
    if (this.#clients.size >= this.#backend.settings.sseClients) {
      res.writeHead(503, { ...headers, 'content-type': 'text/plain; charset=utf-8', 'retry-after': '10' })
      res.end(`too many status pages open (admin_sse_clients ${this.#backend.settings.sseClients})\n`)
      return
    }
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    })
    res.write(`retry: ${Math.max(2000, this.#backend.settings.updateIntervalMs)}\n\n`)
    const client: Client = { res, query }
    this.#clients.add(client)
    req.socket.setNoDelay(true)
    const gone = () => {
      this.#clients.delete(client)
      if (this.#clients.size === 0) this.#stop()
    }
    res.once('close', gone)
    void this.#tick([client])
    this.#timer ??= setInterval(() => void this.#tick([...this.#clients]), this.#backend.settings.updateIntervalMs)
  }

  /** Ends every stream (the listener closes). */
  close(): void {
    for (const c of this.#clients) c.res.end()
    this.#clients.clear()
    this.#stop()
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  async #tick(clients: readonly Client[]): Promise<void> {
    // A tick still collecting (slow workers) is not joined by another: updates are skipped instead.
    if (this.#ticking && clients.length > 1) return
    this.#ticking = true
    try {
      const byQuery = new Map<string, Client[]>()
      for (const c of clients) {
        const key = JSON.stringify(c.query)
        byQuery.set(key, [...(byQuery.get(key) ?? []), c])
      }
      for (const group of byQuery.values()) {
        const first = group[0] as Client
        const view = await statusView(this.#backend, first.query).catch(() => undefined)
        if (view === undefined) continue
        const event = `event: status\ndata: ${JSON.stringify(view)}\n\n`
        for (const c of group) if (!c.res.writableEnded && c.res.writableLength < 1 << 20) c.res.write(event)
      }
    } finally {
      this.#ticking = false
    }
  }
}
