/**
 * Greylisting's settings in qpsmtpd's layers: built-in defaults, then the `denysoft_greylist`
 * file (`name value` lines), then the arguments on the plugins line, then (per_recipient) the
 * recipient's own `denysoft_greylist` lines. The plugin line's options are declared without
 * defaults so that an argument left out lets the file decide.
 */
import type { ConfigLine } from '../../config/config-dir.ts'
import { ConfigError, ConfigErrorCode } from '../../config/config-error.ts'
import { type OptionSpec, opt } from '../../host/options.ts'

/** An option that is undefined when not given. */
function optional<T>(inner: OptionSpec<T>): OptionSpec<T | undefined> {
  return {
    ...inner,
    hasDefault: true,
    default: undefined,
    check: (v) => (v === undefined ? undefined : inner.check(v)),
  }
}

const seconds = (description: string) => optional(opt.number({ min: 0, integer: true, description }))

/** The settings the layers may set, with their parsers. */
export const layeredOptions = {
  remote_ip: optional(opt.boolean({ description: 'the client address is part of the triplet (default 1)' })),
  sender: optional(opt.boolean({ description: 'the envelope sender is part of the triplet (default 0)' })),
  recipient: optional(opt.boolean({ description: 'each recipient is part of the triplet (default 0)' })),
  black_timeout: seconds('seconds a new triplet is deferred (default 3000, 50 minutes)'),
  grey_timeout: seconds('seconds after the first attempt a retry is still accepted (default 12000, 3h20m)'),
  white_timeout: seconds('seconds a triplet that passed stays known without mail (default 3110400, 36 days)'),
  deny_late: optional(opt.boolean({ description: 'defer at DATA instead of MAIL, so every recipient is logged' })),
  reject: optional(opt.boolean({ description: '0 records and logs only (to seed the database), 1 defers' })),
  mode: optional(opt.string({ description: "qpsmtpd's old name for reject: testonly or off mean reject 0" })),
  p0f: optional(opt.string({ description: 'greylist only clients whose p0f fingerprint matches, e.g. genre,windows' })),
  geoip: optional(opt.list({ description: 'countries (ISO codes) whose clients are not greylisted' })),
  db_dir: optional(opt.string({ description: 'keep the triplets in an SQLite file in this directory' })),
  redis: optional(opt.string({ description: 'keep the triplets in this Redis (host[:port] or redis:// URL)' })),
} as const

type Layered = {
  -readonly [K in keyof typeof layeredOptions]?: Exclude<ReturnType<(typeof layeredOptions)[K]['parse']>, undefined>
}

export interface Settings {
  readonly remote_ip: boolean
  readonly sender: boolean
  readonly recipient: boolean
  readonly black_timeout: number
  readonly grey_timeout: number
  readonly white_timeout: number
  readonly deny_late: boolean
  readonly reject: boolean
  readonly p0f: string | undefined
  readonly geoip: readonly string[]
  readonly db_dir: string | undefined
  readonly redis: string | undefined
}

export const defaults: Settings = {
  remote_ip: true,
  sender: false,
  recipient: false,
  black_timeout: 50 * 60,
  grey_timeout: 3 * 3600 + 20 * 60,
  white_timeout: 36 * 24 * 3600,
  deny_late: false,
  reject: true,
  p0f: undefined,
  geoip: [],
  db_dir: undefined,
  redis: undefined,
}

const isLayered = (name: string): name is keyof typeof layeredOptions => Object.hasOwn(layeredOptions, name)

/** `name value` lines; a bad line throws a ConfigError at its place (or is reported to `onBad`). */
export function parseLayer(lines: readonly ConfigLine[], onBad?: (e: ConfigError) => void): Layered {
  const out: Record<string, unknown> = {}
  for (const l of lines) {
    const m = /^\s*(\S+)\s+(.*?)\s*$/.exec(l.text)
    const bad = (why: string) => {
      const e = new ConfigError(ConfigErrorCode.Syntax, l.file, l.line, why)
      if (onBad === undefined) throw e
      onBad(e)
    }
    if (!m) {
      bad(`expected "name value", got ${JSON.stringify(l.text)}`)
      continue
    }
    const [name, value] = [m[1] as string, m[2] as string]
    if (!isLayered(name)) {
      bad(`unknown setting "${name}" (${Object.keys(layeredOptions).join(', ')})`)
      continue
    }
    try {
      out[name] = layeredOptions[name].parse(value)
    } catch (e) {
      bad(`${name}: ${(e as Error).message}`)
    }
  }
  return out as Layered
}

/** The layers, lowest first, into settings; throws on settings that cannot work together. */
export function combine(...layers: readonly Layered[]): Settings {
  const merged: Record<string, unknown> = { ...defaults }
  for (const layer of layers)
    for (const [k, v] of Object.entries(layer)) if (v !== undefined && k !== 'mode') merged[k] = v
  const mode = layers.findLast((l) => l.mode !== undefined)?.mode
  const rejectGiven = layers.some((l) => l.reject !== undefined)
  if (mode !== undefined && !rejectGiven) merged.reject = !/testonly|off/i.test(mode)
  const s = merged as unknown as Settings
  if (!s.remote_ip && !s.sender && !s.recipient) throw new Error('enable one of remote_ip, sender or recipient')
  if (s.grey_timeout <= s.black_timeout)
    throw new Error(`grey_timeout (${s.grey_timeout}) must be longer than black_timeout (${s.black_timeout})`)
  if (s.white_timeout <= 0) throw new Error('white_timeout must be positive')
  return s
}
