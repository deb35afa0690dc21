/**
 * The numbers of the Sendmail 8 milter protocol, version 6 (libmilter's mfdef.h, as Postfix's
 * milter8.c uses them): command and reply letters, action bits the filter may request
 * (SMFIF_*), protocol bits saying which events it does not want and which it will not answer
 * (SMFIP_*), and the macro stages of the option negotiation's symbol lists (SMFIM_*).
 */

/** Commands, MTA to filter. */
export const Command = {
  abort: 'A',
  body: 'B',
  connect: 'C',
  macro: 'D',
  endOfMessage: 'E',
  helo: 'H',
  header: 'L',
  mail: 'M',
  endOfHeaders: 'N',
  optionNegotiation: 'O',
  quit: 'Q',
  rcpt: 'R',
  data: 'T',
  unknown: 'U',
} as const
export type CommandName = keyof typeof Command
export type CommandLetter = (typeof Command)[CommandName]

/** Replies, filter to MTA. */
export const ReplyLetter = {
  addRecipient: '+',
  removeRecipient: '-',
  addRecipientWithArgs: '2',
  shutdown: '4',
  accept: 'a',
  replaceBody: 'b',
  continue: 'c',
  discard: 'd',
  changeSender: 'e',
  connectionFailure: 'f',
  addHeader: 'h',
  insertHeader: 'i',
  setSymbolList: 'l',
  changeHeader: 'm',
  progress: 'p',
  quarantine: 'q',
  reject: 'r',
  skip: 's',
  tempfail: 't',
  replyCode: 'y',
} as const

/** Actions a filter may request at negotiation (SMFIF_*). */
export const Action = {
  addHeaders: 0x01,
  changeBody: 0x02,
  addRecipients: 0x04,
  removeRecipients: 0x08,
  changeHeaders: 0x10,
  quarantine: 0x20,
  changeSender: 0x40,
  addRecipientsWithArgs: 0x80,
  setSymbolList: 0x100,
} as const

/** Every action this client carries out: the MTA offers all of them, as Postfix does. */
export const allActions = Object.values(Action).reduce((a, b) => a | b, 0)

/** Protocol bits (SMFIP_*): events the filter does not want, replies it will not send, features. */
export const Protocol = {
  noConnect: 0x01,
  noHelo: 0x02,
  noMail: 0x04,
  noRcpt: 0x08,
  noBody: 0x10,
  noHeaders: 0x20,
  noEndOfHeaders: 0x40,
  noHeaderReply: 0x80,
  noUnknown: 0x100,
  noData: 0x200,
  skip: 0x400,
  rejectedRcpts: 0x800,
  noConnectReply: 0x1000,
  noHeloReply: 0x2000,
  noMailReply: 0x4000,
  noRcptReply: 0x8000,
  noDataReply: 0x10000,
  noUnknownReply: 0x20000,
  noEndOfHeadersReply: 0x40000,
  noBodyReply: 0x80000,
  headerLeadingSpace: 0x100000,
} as const

/** The event bits each protocol version defines (Postfix's MILTER8_V*_PROTO_MASK). */
const v2Events =
  Protocol.noConnect |
  Protocol.noHelo |
  Protocol.noMail |
  Protocol.noRcpt |
  Protocol.noBody |
  Protocol.noHeaders |
  Protocol.noEndOfHeaders
const v3Events = v2Events | Protocol.noUnknown
const v4Events = v3Events | Protocol.noData
const noReplyBits =
  Protocol.noConnectReply |
  Protocol.noHeloReply |
  Protocol.noMailReply |
  Protocol.noRcptReply |
  Protocol.noDataReply |
  Protocol.noUnknownReply |
  Protocol.noHeaderReply |
  Protocol.noEndOfHeadersReply |
  Protocol.noBodyReply

export type ProtocolVersion = 2 | 3 | 4 | 6

/**
 * What the MTA offers at each version. Version 6 offers every feature this client implements:
 * not `rejectedRcpts`, since a recipient refused by another plugin is never shown to the milter.
 */
export const offeredProtocol: Readonly<Record<ProtocolVersion, number>> = {
  2: v2Events,
  3: v3Events,
  4: v4Events,
  6: v4Events | Protocol.skip | noReplyBits | Protocol.headerLeadingSpace,
}

/** Events a version does not define, whatever the filter says: they are never sent. */
export const undefinedEvents = (version: number): number => {
  const all = v4Events
  if (version >= 4) return 0
  if (version === 3) return all & ~v3Events
  return all & ~v2Events
}

/** The macro stages of SMFIC_MACRO and of the negotiation's symbol lists (SMFIM_*). */
export const MacroStage = {
  connect: 0,
  helo: 1,
  mail: 2,
  rcpt: 3,
  data: 4,
  endOfMessage: 5,
  endOfHeaders: 6,
} as const
export type MacroStageName = keyof typeof MacroStage

/** Body chunks are at most this long (libmilter's MILTER_CHUNK_SIZE). */
export const BODY_CHUNK = 65_535
