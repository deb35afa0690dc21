/**
 * Dovecot's authentication client protocol (version 1.2), the one Postfix speaks with
 * `smtpd_sasl_type = dovecot`: tab-separated lines; the server's handshake names its mechanisms
 * (`MECH name flags...`) up to `DONE`; then `AUTH id mech params` from us, and `CONT id data`,
 * `OK id params` or `FAIL id params` from it, `CONT id data` from us in between.
 * Pure: formatting and parsing only. Values are tab-escaped as Dovecot does (str_tabescape).
 */

export interface DovecotMechanism {
  readonly name: string
  /** plaintext, dictionary, active, forward-secrecy, mutual-auth, private, anonymous. */
  readonly flags: readonly string[]
}

export interface Handshake {
  readonly mechanisms: readonly DovecotMechanism[]
}

export type ServerReply =
  | { readonly kind: 'CONT'; readonly id: string; readonly data: Buffer }
  | { readonly kind: 'OK'; readonly id: string; readonly params: ReadonlyMap<string, string> }
  | { readonly kind: 'FAIL'; readonly id: string; readonly params: ReadonlyMap<string, string> }

/** What we send first: our protocol version and process id. */
export const clientHello = (pid: number): string[] => ['VERSION\t1\t2', `CPID\t${pid}`]

/** Dovecot's str_tabunescape: \x01 followed by 1, t, r or n. */
export function tabUnescape(s: string): string {
  return s.replace(/\x01([1trn0])/g, (_, c: string) =>
    c === '1' ? '\x01' : c === 't' ? '\t' : c === 'r' ? '\r' : c === 'n' ? '\n' : '\0',
  )
}

/** Dovecot's str_tabescape. */
export function tabEscape(s: string): string {
  return s.replace(/[\x00\x01\t\r\n]/g, (c) =>
    c === '\x01' ? '\x011' : c === '\t' ? '\x01t' : c === '\r' ? '\x01r' : c === '\n' ? '\x01n' : '\x010',
  )
}

/**
 * Feeds the handshake one line at a time: undefined while it goes on, the handshake at `DONE`.
 * Throws for a server of another major version or a line out of place.
 */
export class HandshakeReader {
  readonly #mechanisms: DovecotMechanism[] = []
  #versionSeen = false

  push(line: string): Handshake | undefined {
    const [key, ...args] = line.split('\t')
    switch (key) {
      case 'VERSION':
        if (args[0] !== '1') throw new Error(`Dovecot auth protocol version ${args.join('.')}, not 1.x`)
        this.#versionSeen = true
        return undefined
      case 'MECH':
        if (args[0] !== undefined && args[0] !== '')
          this.#mechanisms.push({ name: args[0].toUpperCase(), flags: args.slice(1) })
        return undefined
      case 'DONE':
        if (!this.#versionSeen) throw new Error('Dovecot auth handshake without VERSION')
        return { mechanisms: this.#mechanisms }
      case 'SPID':
      case 'CUID':
      case 'COOKIE':
        return undefined
      default:
        throw new Error(`unexpected line in the Dovecot auth handshake: ${JSON.stringify(line.slice(0, 40))}`)
    }
  }
}

export interface AuthRequest {
  readonly id: string
  readonly mechanism: string
  readonly service: string
  /** The initial response, if the client sent one (empty for `=`). */
  readonly initial: Buffer | undefined
  readonly secured: boolean
  readonly localIp: string
  readonly localPort: number
  readonly remoteIp: string
  readonly remotePort: number
  /** Our session id, for Dovecot's log. */
  readonly session: string
}

/**
 * `AUTH id mech service=smtp nologin ...`: `nologin` as Postfix sends it (no login follows, so no
 * userdb lookup is needed); `secured` when the client's connection is TLS.
 */
export function authLine(r: AuthRequest): string {
  const params = [
    `service=${tabEscape(r.service)}`,
    'nologin',
    `lip=${r.localIp}`,
    `rip=${r.remoteIp}`,
    `lport=${r.localPort}`,
    `rport=${r.remotePort}`,
    `session=${tabEscape(r.session)}`,
  ]
  if (r.secured) params.push('secured')
  if (r.initial !== undefined) params.push(`resp=${r.initial.toString('base64')}`)
  return ['AUTH', r.id, r.mechanism, ...params].join('\t')
}

export const contLine = (id: string, data: Buffer): string => `CONT\t${id}\t${data.toString('base64')}`

function params(args: readonly string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const a of args) {
    const eq = a.indexOf('=')
    if (eq < 0) out.set(a, '')
    else out.set(a.slice(0, eq), tabUnescape(a.slice(eq + 1)))
  }
  return out
}

/** A line from the server after the handshake; undefined for anything else. */
export function parseServerReply(line: string): ServerReply | undefined {
  const [kind, id, ...args] = line.split('\t')
  if (id === undefined || id === '') return undefined
  if (kind === 'CONT') {
    const data = args[0] ?? ''
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data)) return undefined
    return { kind, id, data: Buffer.from(data, 'base64') }
  }
  if (kind === 'OK' || kind === 'FAIL') return { kind, id, params: params(args) }
  return undefined
}
