/** Parser results: a value, or the reply a failed parse deserves. */
import type { EnhancedCode } from './reply.ts'

export type ParseResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly code: number; readonly enhanced: EnhancedCode; readonly message: string }

export const parsed = <T>(value: T): ParseResult<T> => ({ ok: true, value })
export const parseError = <T = never>(code: number, enhanced: EnhancedCode, message: string): ParseResult<T> => ({
  ok: false,
  code,
  enhanced,
  message,
})
