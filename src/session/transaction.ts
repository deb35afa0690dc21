/**
 * One mail transaction, from MAIL to the end of DATA/BDAT or RSET. Plugins see `view`, never
 * this object: the spool, the pending refusal and the edit window are the core's.
 */
import type { Transaction } from '../host/context.ts'
import { EditWindow } from '../host/edit-window.ts'
import { Notes } from '../host/keys.ts'
import type { Logger } from '../host/logger.ts'
import { type Message, messageView } from '../host/message.ts'
import { Results } from '../host/results.ts'
import { type TransactionState, transactionView } from '../host/transaction.ts'
import { MessageContent } from '../message/message-content.ts'
import type { MessageSpool } from '../message/spool.ts'
import type { BodyType, MailFrom, RcptTo } from '../protocol/envelope.ts'
import type { Reply } from '../protocol/reply.ts'

export class TxnState implements TransactionState {
  readonly id: string
  mailFrom: MailFrom
  recipients: readonly RcptTo[] = Object.freeze([])
  readonly notes = new Notes()
  readonly results = new Results()
  /** When plugins may edit the message and the envelope. */
  readonly edits = new EditWindow()
  /** What plugins get as `ctx.transaction`. */
  readonly view: Transaction
  /** How content arrives; fixed by the first DATA or BDAT (RFC 3030 §2: not mixed). */
  contentMode: 'data' | 'bdat' | undefined
  spool: MessageSpool | undefined
  /** The message after DATA (the ended spool, then plugin edits), and the plugins' view of it. */
  message: { readonly content: MessageContent; readonly view: Message } | undefined
  /** A refusal decided while content still arrives (BDAT after a refused chunk, data hooks). */
  pendingRefusal: Reply | undefined
  /** RCPTs refused for being past the recipient limit (Postfix's rcpt_overshoot). */
  recipientOvershoot = 0
  /** The BDAT chunk being received. */
  bdatChunk: { readonly size: number; readonly last: boolean } | undefined

  constructor(id: string, mailFrom: MailFrom, log: Logger) {
    this.id = id
    this.mailFrom = mailFrom
    this.contentMode = undefined
    this.spool = undefined
    this.message = undefined
    this.pendingRefusal = undefined
    this.bdatChunk = undefined
    this.view = transactionView(this, this.edits, log)
  }

  get body(): BodyType {
    return this.mailFrom.params.body ?? '7BIT'
  }

  /** Records a recipient the rcpt hooks accepted. */
  recordRecipient(to: RcptTo): void {
    this.recipients = Object.freeze([...this.recipients, to])
  }

  /** The ended spool as the message the core and the plugins (through `view`) edit. */
  openMessage(spool: MessageSpool): { readonly content: MessageContent; readonly view: Message } {
    const content = new MessageContent(spool, {
      normalizeLineEndings: this.body !== 'BINARYMIME',
      editable: () => this.edits.allows('body'),
    })
    this.message = { content, view: messageView(content, this.edits) }
    return this.message
  }

  /** Ends the transaction's edits and removes every spooled body (received and replaced). */
  async cleanup(): Promise<void> {
    this.edits.close()
    await (this.message?.content ?? this.spool)?.cleanup()
  }
}
