/**
 * A bare TCP connection from a chosen local address (127.0.0.x) that records what the server
 * sends: for connection-limit tests, where the reply may come with an immediate close.
 */
import { connect, type Socket } from 'node:net'

export interface RawConnection {
  readonly socket: Socket
  /** Everything received up to the first CRLF. */
  readonly firstLine: Promise<string>
  /** Resolves with everything received, once the server closed the connection. */
  readonly closed: Promise<string>
}

export async function rawConnect(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawConnection> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ port, host, ...(localAddress === undefined ? {} : { localAddress }) }, () => resolve(s))
    s.once('error', reject)
  })
  socket.on('error', () => {})
  let data = ''
  let resolveLine!: (s: string) => void
  const firstLine = new Promise<string>((r) => {
    resolveLine = r
  })
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => {
    data += d
    const i = data.indexOf('\r\n')
    if (i >= 0) resolveLine(data.slice(0, i + 2))
  })
  const closed = new Promise<string>((r) =>
    socket.once('close', () => {
      resolveLine(data)
      r(data)
    }),
  )
  return { socket, firstLine, closed }
}
