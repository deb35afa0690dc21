/**
 * The events the MTA reports to a milter, each with the protocol bits by which the milter says
 * it does not want it or will not answer it and the macro stage it belongs to; the action bit
 * each modification needs; the command letter SMFIC_MACRO names for each macro stage.
 */
import {
  Action,
  Command,
  type CommandLetter,
  MacroStage,
  type MacroStageName,
  Protocol,
  ReplyLetter,
} from './constants.ts'

/** An event: its letter, the bits that say the filter does not want it or will not answer it. */
export interface EventSpec {
  readonly letter: CommandLetter
  readonly notWanted: number
  readonly noReply: number
  readonly stage: MacroStageName | 'unknown' | undefined
  readonly content: boolean
}

export const events = {
  connect: {
    letter: Command.connect,
    notWanted: Protocol.noConnect,
    noReply: Protocol.noConnectReply,
    stage: 'connect',
  },
  helo: { letter: Command.helo, notWanted: Protocol.noHelo, noReply: Protocol.noHeloReply, stage: 'helo' },
  mail: { letter: Command.mail, notWanted: Protocol.noMail, noReply: Protocol.noMailReply, stage: 'mail' },
  rcpt: { letter: Command.rcpt, notWanted: Protocol.noRcpt, noReply: Protocol.noRcptReply, stage: 'rcpt' },
  data: { letter: Command.data, notWanted: Protocol.noData, noReply: Protocol.noDataReply, stage: 'data' },
  unknown: {
    letter: Command.unknown,
    notWanted: Protocol.noUnknown,
    noReply: Protocol.noUnknownReply,
    stage: 'unknown',
  },
  header: {
    letter: Command.header,
    notWanted: Protocol.noHeaders,
    noReply: Protocol.noHeaderReply,
    stage: 'endOfHeaders',
    content: true,
  },
  endOfHeaders: {
    letter: Command.endOfHeaders,
    notWanted: Protocol.noEndOfHeaders,
    noReply: Protocol.noEndOfHeadersReply,
    stage: 'endOfHeaders',
    content: true,
  },
  body: { letter: Command.body, notWanted: Protocol.noBody, noReply: Protocol.noBodyReply, content: true },
  endOfMessage: { letter: Command.endOfMessage, notWanted: 0, noReply: 0, stage: 'endOfMessage', content: true },
} as const satisfies Record<string, Partial<EventSpec> & Pick<EventSpec, 'letter' | 'notWanted' | 'noReply'>>

/** The action bit each modification needs. */
export const actionFor: Readonly<Record<string, number>> = {
  [ReplyLetter.addHeader]: Action.addHeaders,
  [ReplyLetter.insertHeader]: Action.addHeaders,
  [ReplyLetter.changeHeader]: Action.changeHeaders,
  [ReplyLetter.addRecipient]: Action.addRecipients,
  [ReplyLetter.addRecipientWithArgs]: Action.addRecipientsWithArgs,
  [ReplyLetter.removeRecipient]: Action.removeRecipients,
  [ReplyLetter.changeSender]: Action.changeSender,
  [ReplyLetter.replaceBody]: Action.changeBody,
  [ReplyLetter.quarantine]: Action.quarantine,
}

export const stageNames = Object.keys(MacroStage) as MacroStageName[]

/** SMFIC_MACRO names the command its macros are for. */
export const stageLetters: Readonly<Record<MacroStageName, CommandLetter>> = {
  connect: Command.connect,
  helo: Command.helo,
  mail: Command.mail,
  rcpt: Command.rcpt,
  data: Command.data,
  endOfMessage: Command.endOfMessage,
  endOfHeaders: Command.endOfHeaders,
}
