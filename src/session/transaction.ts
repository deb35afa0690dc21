/**
 * One mail transaction, from MAIL to the end of DATA/BDAT or RSET.
 */
import type { Transaction } from '../host/context.ts'
import { Notes } from '../host/keys.ts'
import { Results } from '../host/results.ts'
import type { MessageSpool } from '../message/spool.ts'
import type { BodyType, MailFrom, RcptTo } from '../protocol/envelope.ts'
import type { Reply } from '../protocol/reply.ts'

export class TxnState implements Transaction {
  readonly id: string
  readonly mailFrom: MailFrom
  readonly recipients: RcptTo[] = []
  readonly notes = new Notes()
  readonly results = new Results()
  /** How content arrives; fixed by the first DATA or BDAT (RFC 3030 §2: not mixed). */
  contentMode: 'data' | 'bdat' | undefined
  spool: MessageSpool | undefined
  /** A refusal decided while content still arrives (BDAT after a refused chunk, data hooks). */
  pendingRefusal: Reply | undefined
  /** RCPTs refused for being past the recipient limit (Postfix's rcpt_overshoot). */
  recipientOvershoot = 0
  /** The BDAT chunk being received. */
  bdatChunk: { readonly size: number; readonly last: boolean } | undefined

  constructor(id: string, mailFrom: MailFrom) {
    this.id = id
    this.mailFrom = mailFrom
    this.contentMode = undefined
    this.spool = undefined
    this.pendingRefusal = undefined
    this.bdatChunk = undefined
  }

  get body(): BodyType {
    return this.mailFrom.params.body ?? '7BIT'
  }
}
