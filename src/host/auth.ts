/**
 * The AUTH contract between the core and authentication backends (RFC 4954). The core runs the
 * SASL dialogue, counts failures and answers the client; a backend answers one question:
 *
 * - `authPassword`: is this the user's password? (PLAIN, LOGIN)
 * - `authScram`: what are the user's stored SCRAM secrets? The core runs SCRAM-SHA-256 itself
 *   (RFC 5802, RFC 7677), so the password never crosses the wire in a replayable form.
 * - `authToken`: is this OAuth 2.0 bearer token good for the user? (OAUTHBEARER, XOAUTH2)
 * - `authSasl` with `authMechanisms`: the backend runs whole exchanges of the mechanisms it
 *   names over the core's channel (Dovecot SASL).
 * qpsmtpd's hooks `authPlain`, `authLogin`, `authCramMd5` and `auth` keep their meaning.
 */
import type { ReplyText, Verdict } from './verdict.ts'

/** PLAIN (RFC 4616) and LOGIN: the client sent the password itself. */
export interface PasswordLogin {
  readonly mechanism: 'PLAIN' | 'LOGIN'
  /** The authentication identity as the client wrote it (valid UTF-8, no control characters). */
  readonly user: string
  /** Never empty, never with CR or LF. Never log it. */
  readonly password: string
}

/**
 * An AUTH hook's answer: a Verdict, or `authenticated(user)`, an acceptance that names the user
 * the session is authenticated as (the backend's canonical name: the LDAP uid, Dovecot's user).
 */
export type AuthVerdict = Verdict | Authenticated

export interface Authenticated {
  readonly kind: 'authenticated'
  readonly user: string
  readonly reply?: ReplyText
}

/**
 * Accepts the client as `user` (which may differ from the name it gave).
 *
 * @example
 * const authPassword: AuthPasswordHook = async (ctx, login) =>
 *   (await directory.bind(login.user, login.password)) ? authenticated(login.user.toLowerCase()) : reject()
 */
export const authenticated = (user: string, reply?: ReplyText): AuthVerdict =>
  reply === undefined ? { kind: 'authenticated', user } : { kind: 'authenticated', user, reply }

export type ScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-256-PLUS'

/** What the core asks of a SCRAM backend: the stored secrets of `user`. */
export interface ScramLookup {
  readonly mechanism: ScramMechanism
  /** The hash the secrets must be made with (SCRAM-SHA-256: sha256). */
  readonly hash: 'sha256'
  /** The authentication identity from the client-first message, `=2C`/`=3D` decoded. */
  readonly user: string
}

/**
 * A user's SCRAM secrets (RFC 5802 §3): SaltedPassword = PBKDF2(password, salt, iterations),
 * StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key").
 * What Dovecot stores as `{SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey`: they let a server
 * check a client's proof, but not pose as the client.
 */
export interface ScramCredentials {
  readonly iterations: number
  readonly salt: Buffer
  readonly storedKey: Buffer
  readonly serverKey: Buffer
}

/**
 * What `authScram` answers: the user's credentials, `pass()` (unknown user: the next backend),
 * `reject()` (the user may not log in) or `defer()` (the backend cannot answer now, 454). It
 * cannot accept: only the client's proof does that, checked by the core (an `accept()` here is
 * a plugin failure, 454).
 */
export type ScramVerdict = Verdict | ScramFound

export interface ScramFound {
  readonly kind: 'credentials'
  /** Stored secrets, or a clear-text password the core derives them from. */
  readonly credentials: ScramCredentials | { readonly password: string }
  /** The name the session is authenticated as on success (default: the client's). */
  readonly user?: string | undefined
}

/** The user's stored SCRAM secrets, for the core to check the client's proof against. */
export const scramCredentials = (credentials: ScramCredentials, user?: string): ScramVerdict =>
  user === undefined ? { kind: 'credentials', credentials } : { kind: 'credentials', credentials, user }

/**
 * For a backend that stores the password in clear text: the core derives the secrets itself,
 * with the salt and iteration count it uses for unknown users, so that a client cannot tell a
 * clear-text entry, a stored one and a missing one apart by the salt.
 */
export const scramPassword = (password: string, user?: string): ScramVerdict =>
  user === undefined
    ? { kind: 'credentials', credentials: { password } }
    : { kind: 'credentials', credentials: { password }, user }

export type TokenMechanism = 'OAUTHBEARER' | 'XOAUTH2'

/** An OAuth 2.0 bearer token (OAUTHBEARER, RFC 7628; Google's XOAUTH2). Never log the token. */
export interface BearerToken {
  readonly mechanism: TokenMechanism
  /**
   * Who the client says it is: OAUTHBEARER's authzid (`a=`, may be empty), XOAUTH2's `user=`.
   * Accepting means the token is good *for this user*: compare it with the token's subject.
   */
  readonly user: string
  readonly token: string
  /** OAUTHBEARER's `host` and `port` key-values (what the client connected to), if sent. */
  readonly host: string | undefined
  readonly port: number | undefined
}

/** The channel binding types of RFC 5056 the core can give (RFC 9266: TLS 1.3 only). */
export type ChannelBindingType = 'tls-exporter'

/**
 * The core's side of a SASL exchange that a backend runs itself (`authSasl`). The core owns the
 * wire: it base64-encodes challenges as `334` lines, reads and decodes the client's responses
 * (bounded by limits.authLine), and answers the client when the hook returns.
 */
export interface SaslChannel {
  /** The mechanism the client chose, upper case, one that the plugin's authMechanisms named. */
  readonly mechanism: string
  /** The initial response (RFC 4954 §4), decoded: undefined when the client sent none, empty for `=`. */
  readonly initialResponse: Buffer | undefined
  /**
   * Sends `data` as a 334 challenge and resolves with the client's decoded response; undefined
   * when the exchange is over (the client cancelled with `*`, sent bad base64, or left): then
   * return any verdict, the core gives the reply. Server data on success (SCRAM's server-final
   * message) is a last challenge whose (empty) response the client sends before the 235.
   */
  challenge(data: Uint8Array | string): Promise<Buffer | undefined>
  /**
   * The channel binding data of this connection (RFC 9266 tls-exporter: 32 bytes exported with
   * the label `EXPORTER-Channel-Binding`); undefined without TLS 1.3.
   */
  channelBinding(type: ChannelBindingType): Buffer | undefined
}
