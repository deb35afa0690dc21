/**
 * Reads a PROXY protocol header off a freshly accepted (paused) socket from a trusted proxy:
 * within a deadline and a size cap, then pauses the socket again and puts back any bytes that
 * followed the header (the client's first bytes, or a TLS ClientHello) for the session.
 */
import type { Socket } from 'node:net'
import { type ProxyHeader, parseProxyHeader } from './proxy-protocol.ts'

export type ProxyRead =
  | { readonly ok: true; readonly header: ProxyHeader }
  | { readonly ok: false; readonly reason: string }

export function readProxyHeader(socket: Socket, opts: { timeoutMs: number; maxHeader: number }): Promise<ProxyRead> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0)
    const finish = (r: ProxyRead, rest?: Buffer) => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('close', onEnd)
      socket.pause()
      if (rest !== undefined && rest.length > 0) socket.unshift(rest)
      resolve(r)
    }
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
      const r = parseProxyHeader(buf, opts.maxHeader)
      if (r.status === 'incomplete') return
      if (r.status === 'error') return finish({ ok: false, reason: r.reason })
      finish({ ok: true, header: r.header }, buf.subarray(r.length))
    }
    const onEnd = () => finish({ ok: false, reason: 'connection closed before the PROXY header' })
    const timer = setTimeout(
      () => finish({ ok: false, reason: `no PROXY header within ${opts.timeoutMs} ms` }),
      opts.timeoutMs,
    )
    socket.on('data', onData)
    socket.once('end', onEnd)
    socket.once('close', onEnd)
    socket.resume()
  })
}
