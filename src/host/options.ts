/**
 * Typed plugin options, validated at start-up. A plugin declares a schema; the same schema
 * reads qpsmtpd's `config/plugins` arguments (`reject 0 reject_type temp`, positional paths)
 * and typed objects from code. Errors name the option; the loader adds file and line.
 *
 * @example
 *   const options = { reject: opt.enum(['0', '1', 'naughty'], '1'), timeout: opt.number({ default: 5, min: 0 }) }
 */

import { type LogLevelAdjustment, parseLogLevelAdjustment } from './logger.ts'

/** The `type` of an `opt.loglevel()` option, by which the loader finds it. */
export const logLevelOptionType = 'loglevel (0-7, name, +N or -N)'

export interface OptionSpec<T> {
  readonly type: string
  readonly description: string
  /** Index among positional arguments in qpsmtpd syntax, if this option may be given bare. */
  readonly positional: number | undefined
  readonly hasDefault: boolean
  readonly default: T | undefined
  /** Parses one raw qpsmtpd argument value; throws an Error with a readable message. */
  parse(raw: string): T
  /** Checks a value given from code. */
  check(value: unknown): T
}

export type OptionSchema = Readonly<Record<string, OptionSpec<unknown>>>
export type OptionsOf<S extends OptionSchema> = {
  readonly [K in keyof S]: S[K] extends OptionSpec<infer T> ? T : never
}
export type OptionsInput<S extends OptionSchema> = {
  readonly [K in keyof S]?: (S[K] extends OptionSpec<infer T> ? T : never) | string
}

interface Common<T> {
  readonly default?: T
  readonly positional?: number
  readonly description?: string
}

function spec<T>(type: string, c: Common<T>, parse: (raw: string) => T, check: (v: unknown) => T): OptionSpec<T> {
  return {
    type,
    description: c.description ?? '',
    positional: c.positional,
    hasDefault: 'default' in c,
    default: c.default,
    parse,
    check,
  }
}

const fail = (msg: string): never => {
  throw new Error(msg)
}

function parseNumber(raw: string, c: { min?: number; max?: number; integer?: boolean }): number {
  if (!/^-?\d+(\.\d+)?$/.test(raw.trim())) fail(`expected a number, got "${raw}"`)
  return checkNumber(Number(raw), c)
}

function checkNumber(n: unknown, c: { min?: number; max?: number; integer?: boolean }): number {
  if (typeof n !== 'number' || !Number.isFinite(n)) return fail(`expected a number, got ${String(n)}`)
  if (c.integer && !Number.isInteger(n)) fail(`expected an integer, got ${n}`)
  if (c.min !== undefined && n < c.min) fail(`must be at least ${c.min}, got ${n}`)
  if (c.max !== undefined && n > c.max) fail(`must be at most ${c.max}, got ${n}`)
  return n
}

const truthy = new Set(['1', 'true', 'yes', 'on'])
const falsy = new Set(['0', 'false', 'no', 'off'])

export const opt = {
  string(c: Common<string> & { pattern?: RegExp } = {}): OptionSpec<string> {
    const check = (v: unknown): string => {
      if (typeof v !== 'string') return fail(`expected a string, got ${typeof v}`)
      if (c.pattern && !c.pattern.test(v)) fail(`"${v}" does not match ${c.pattern}`)
      return v
    }
    return spec('string', c, check, check)
  },
  optionalString(c: Omit<Common<string>, 'default'> = {}): OptionSpec<string | undefined> {
    const check = (v: unknown): string | undefined => {
      if (v === undefined) return undefined
      if (typeof v !== 'string') return fail(`expected a string, got ${typeof v}`)
      return v
    }
    return spec<string | undefined>('string', { ...c, default: undefined }, check, check)
  },
  number(c: Common<number> & { min?: number; max?: number; integer?: boolean } = {}): OptionSpec<number> {
    return spec(
      c.integer ? 'integer' : 'number',
      c,
      (raw) => parseNumber(raw, c),
      (v) => checkNumber(v, c),
    )
  },
  boolean(c: Common<boolean> = {}): OptionSpec<boolean> {
    return spec(
      'boolean',
      c,
      (raw) => {
        const t = raw.trim().toLowerCase()
        if (truthy.has(t)) return true
        if (falsy.has(t)) return false
        return fail(`expected 0/1, yes/no or true/false, got "${raw}"`)
      },
      (v) => (typeof v === 'boolean' ? v : fail(`expected a boolean, got ${typeof v}`)),
    )
  },
  enum<const V extends string>(values: readonly V[], c: Common<V> = {}): OptionSpec<V> {
    const check = (v: unknown): V => {
      const s = typeof v === 'number' ? String(v) : v
      if (typeof s === 'string') {
        const found = values.find((x) => x.toLowerCase() === s.toLowerCase())
        if (found !== undefined) return found
      }
      return fail(`expected one of ${values.join(', ')}, got "${String(v)}"`)
    }
    return spec(`one of ${values.join('|')}`, c, check, check)
  },
  /**
   * qpsmtpd's per-plugin `loglevel`: `N` (0-7) or a level name writes every entry of the plugin
   * at that level, `+N`/`-N` makes each entry N levels less/more severe. The host applies it to
   * the plugin's logger; the plugin need not read it.
   */
  loglevel(c: Pick<Common<never>, 'description'> = {}): OptionSpec<LogLevelAdjustment | undefined> {
    const parse = (raw: string): LogLevelAdjustment =>
      parseLogLevelAdjustment(raw) ?? fail(`expected 0-7, a level name (LOGINFO, info, ...), or +N/-N, got "${raw}"`)
    const check = (v: unknown): LogLevelAdjustment | undefined => {
      if (v === undefined) return undefined
      if (typeof v === 'string') return parse(v)
      if (typeof v === 'number') return parse(String(v))
      const a = v as { kind?: unknown; level?: unknown; by?: unknown }
      const level = typeof a.level === 'number' ? a.level : -1
      if (a.kind === 'absolute' && Number.isInteger(level) && level >= 0 && level <= 7) return v as LogLevelAdjustment
      if (a.kind === 'relative' && Number.isInteger(a.by)) return v as LogLevelAdjustment
      return fail(`expected a log level, got ${JSON.stringify(v)}`)
    }
    return spec<LogLevelAdjustment | undefined>(logLevelOptionType, { ...c, default: undefined }, parse, check)
  },
  /** A comma- or space-separated list in qpsmtpd syntax; an array from code. */
  list(c: Common<readonly string[]> = {}): OptionSpec<readonly string[]> {
    return spec(
      'list',
      c,
      (raw) => raw.split(/[,\s]+/).filter((x) => x !== ''),
      (v) =>
        Array.isArray(v) && v.every((x) => typeof x === 'string')
          ? (v as string[])
          : fail('expected a list of strings'),
    )
  },
} as const

/**
 * Reads qpsmtpd plugin arguments: bare values fill positional options in order, every other
 * argument is a `key value` pair. Unknown keys and missing values are errors.
 */
export function parsePluginArgs<S extends OptionSchema>(schema: S, args: readonly string[]): OptionsOf<S> {
  const raw = new Map<string, string>()
  const positional = Object.entries(schema)
    .filter(([, s]) => s.positional !== undefined)
    .sort(([, a], [, b]) => (a.positional ?? 0) - (b.positional ?? 0))
  let pos = 0
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    const key = findKey(schema, arg)
    if (key !== undefined && !raw.has(key)) {
      const value = args[i + 1]
      if (value === undefined) fail(`option "${arg}" needs a value`)
      raw.set(key, value as string)
      i++
      continue
    }
    const next = positional[pos++]
    if (next === undefined) fail(`unknown option "${arg}"`)
    raw.set((next as [string, unknown])[0], arg)
  }
  return buildOptions(schema, raw, (s, v) => (s as OptionSpec<unknown>).parse(v as string))
}

/** Validates options given from code (strings are parsed as in qpsmtpd syntax). */
export function checkOptions<S extends OptionSchema>(schema: S, input: OptionsInput<S> = {}): OptionsOf<S> {
  for (const k of Object.keys(input)) if (!(k in schema)) fail(`unknown option "${k}"`)
  const raw = new Map(Object.entries(input).filter(([, v]) => v !== undefined))
  return buildOptions(schema, raw, (s, v) => (typeof v === 'string' ? s.parse(v) : s.check(v)))
}

function findKey(schema: OptionSchema, arg: string): string | undefined {
  if (arg in schema) return arg
  const alt = arg.replace(/-/g, '_')
  return alt in schema ? alt : undefined
}

function buildOptions<S extends OptionSchema>(
  schema: S,
  raw: Map<string, unknown>,
  convert: (spec: OptionSpec<unknown>, value: unknown) => unknown,
): OptionsOf<S> {
  const out: Record<string, unknown> = {}
  for (const [key, s] of Object.entries(schema)) {
    if (raw.has(key)) {
      try {
        out[key] = convert(s, raw.get(key))
      } catch (e) {
        fail(`option "${key}": ${(e as Error).message}`)
      }
    } else if (s.hasDefault) out[key] = s.default
    else fail(`option "${key}" is required`)
  }
  return out as OptionsOf<S>
}
