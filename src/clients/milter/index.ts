/** The MTA side of the Sendmail milter protocol: one session per SMTP connection. */
export type { FilterReply, ModificationReply } from './codec.ts'
export { Action, MacroStage, type MacroStageName, Protocol, type ProtocolVersion } from './constants.ts'
export { MilterError, type MilterErrorCode } from './errors.ts'
export {
  type Decision,
  type MacroLookup,
  MilterSession,
  type MilterSessionOptions,
  type ModificationSink,
  type Negotiated,
} from './session.ts'
export { parseMilterSocket } from './socket-spec.ts'
