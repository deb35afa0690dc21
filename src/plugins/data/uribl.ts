/**
 * data/uribl (qpsmtpd `uribl`, `async/uribl`): the domains of the URLs and host names in a
 * message against URI blocklists (SURBL, URIBL, Spamhaus DBL; `uribl_zones` lines are
 * `zone [mask[,mask...]] [action]`). The message is parsed with postal-mime up to `max_size`
 * octets (decoded text and HTML parts, quoted-printable and base64 undone), names are reduced
 * to registrable domains (uri-hosts.ts), and every name is asked of every zone at once. A code
 * counts when it has a bit of the zone's mask; 127.0.0.1 ("query refused" at URIBL and SURBL),
 * 127.255.255.0/24 and addresses outside 127/8 are failures, never listings. Actions:
 * add-header (X-URIBL-Match, the default), deny (554 5.7.1), denysoft (451 4.7.1), log.
 */
import PostalMime from 'postal-mime'
import type { ConfigLine } from '../../config/config-dir.ts'
import { ConfigError, ConfigErrorCode, combineConfigErrors } from '../../config/config-error.ts'
import { isDomainName, queryList, replyText } from '../../dns/dnsbl.ts'
import { isImmune } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHook } from '../../host/hook-map.ts'
import type { Message } from '../../host/message.ts'
import { opt } from '../../host/options.ts'
import { defer, pass, reject } from '../../host/verdict.ts'
import { uriNames } from './uri-hosts.ts'

const ACTIONS = ['add-header', 'deny', 'denysoft', 'log'] as const
type Action = (typeof ACTIONS)[number]

interface UriblZone {
  readonly zone: string
  readonly mask: number
  /** undefined: the plugin's `action`. */
  readonly action: Action | undefined
}

const ALL_LISTS = 0x00ffffff
/** URIBL and SURBL answer 127.0.0.1 to resolvers they refuse (bit 0x1 classifies nothing). */
const QUERY_REFUSED = 0x7f000001

function parseUriblZones(lines: readonly ConfigLine[]): UriblZone[] {
  const zones: UriblZone[] = []
  const problems: ConfigError[] = []
  for (const at of lines) {
    const [name = '', maskText, action, ...rest] = at.text.trim().split(/\s+/)
    const problem = (text: string) => problems.push(new ConfigError(ConfigErrorCode.Syntax, at.file, at.line, text))
    const zone = name.toLowerCase().replace(/\.$/, '')
    if (!isDomainName(zone)) problem(`not a DNS zone name: ${JSON.stringify(name)}`)
    else if (rest.length > 0)
      problem(`expected "zone [mask[,mask...]] [action]", got more: ${JSON.stringify(rest.join(' '))}`)
    else if (action !== undefined && !(ACTIONS as readonly string[]).includes(action))
      problem(`action ${JSON.stringify(action)} of ${zone} is not one of ${ACTIONS.join(', ')}`)
    else if (zones.some((z) => z.zone === zone)) problem(`zone ${zone} is listed twice`)
    else {
      let mask = 0
      for (const part of (maskText ?? '-1').split(',')) {
        if (!/^-?\d{1,10}$/.test(part)) {
          problem(`mask ${JSON.stringify(part)} of ${zone} is not a number (a negative one means every list)`)
          mask = -1
          break
        }
        mask |= Number(part) < 0 ? ALL_LISTS : Number(part) & ALL_LISTS
      }
      if (mask >= 0) zones.push({ zone, mask, action: action as Action | undefined })
    }
  }
  if (problems.length > 0) throw combineConfigErrors(problems)
  return zones
}

/** The first `max` octets of the message, whole when it is smaller. */
async function head(msg: Message, max: number): Promise<{ data: Buffer; cut: boolean }> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of msg.stream()) {
    const b = chunk as Buffer
    chunks.push(size + b.length > max ? b.subarray(0, max - size) : b)
    size += b.length
    if (size >= max) return { data: Buffer.concat(chunks), cut: size > max }
  }
  return { data: Buffer.concat(chunks), cut: false }
}

export default definePlugin({
  name: 'data/uribl',
  aliases: ['uribl', 'async/uribl'],
  description: "refuse or mark messages whose URLs' domains are in URI blocklists (uribl_zones)",
  options: {
    action: opt.enum(ACTIONS, { default: 'add-header', description: 'what a listing does, unless its zone line says' }),
    timeout: opt.number({ default: 30, min: 0.1, description: 'seconds for each lookup (at most dns_timeout)' }),
    'scan-headers': opt.boolean({ default: false, description: 'also look for names in the header fields' }),
    'check-headers': opt.boolean({ default: false, description: 'the same as scan-headers (qpsmtpd took both)' }),
    checkip: opt.boolean({ default: true, description: 'also look up IPv4 addresses of URLs' }),
    max_size: opt.number({ default: 1_048_576, min: 1024, integer: true, description: 'octets of the message parsed' }),
    max_names: opt.number({
      default: 50,
      min: 1,
      max: 1000,
      integer: true,
      description: 'names looked up per message',
    }),
    on_error: opt.enum(['pass', 'defer'], {
      default: 'pass',
      description: 'a list that cannot answer: pass (it lists nothing) or defer (451)',
    }),
    loglevel: opt.loglevel(),
  },
  requires: ['dns'],
  timeoutMs: 60_000,
  // Its lookups can overlap with the content scanners next to it (spamassassin, clamdscan).
  concurrent: true,
  setup({ options, config, dns }) {
    const zones = config.live('uribl_zones', parseUriblZones)
    const whitelist = config.live(
      'uribl_whitelist_domains',
      (lines) => new Set(lines.map((l) => l.text.trim().toLowerCase().replace(/\.$/, ''))),
    )
    const scanHeaders = options['scan-headers'] || options['check-headers']
    const timeoutMs = options.timeout * 1000

    const dataPost: DataPostHook = async (ctx, msg) => {
      msg.headers.remove('X-URIBL-Match')
      const list = zones.current()
      if (isImmune(ctx) || list.length === 0) {
        ctx.result('skip', list.length === 0 ? 'no zones' : 'immune')
        return pass()
      }
      const { data, cut } = await head(msg, options.max_size)
      if (cut)
        ctx.log.info(
          `message larger than max_size ${options.max_size}: its first ${options.max_size} octets are scanned`,
        )
      const email = await PostalMime.parse(data)
      const texts = [email.text ?? '', email.html ?? '']
      if (scanHeaders) texts.push(...email.headers.map((h) => h.value))
      const found = uriNames(texts, options.max_names)
      const allowed = whitelist.current()
      const names = [...found.domains.filter((d) => !allowed.has(d)), ...(options.checkip ? found.reversedIps : [])]
      if (names.length === 0) {
        ctx.result('pass', 'no URIs found')
        return pass()
      }
      const lookups = names.flatMap((name) => list.map((zone) => ({ name, zone })))
      const answers = await Promise.all(
        lookups.map(({ name, zone }) =>
          queryList(dns, `${name}.${zone.zone}`, {
            filter: (code) => (code & zone.mask) !== 0,
            errorCodes: (code) => code === QUERY_REFUSED,
            text: false,
            signal: ctx.signal,
            timeoutMs,
          }),
        ),
      )
      const matches: { action: Action; desc: string }[] = []
      let errors = 0
      for (const [i, a] of answers.entries()) {
        const l = lookups[i]
        if (l === undefined) continue
        if (a.kind === 'error') {
          errors++
          ctx.log.warn(`${l.zone.zone}: no usable answer for ${l.name}: ${a.detail}`)
        } else if (a.kind === 'listed') {
          matches.push({
            action: l.zone.action ?? options.action,
            desc: replyText(`${l.name} in ${l.zone.zone}: ${a.codes.join(', ')}`),
          })
        }
      }
      ctx.log.info(`${lookups.length} lookups of ${names.length} names, ${matches.length} matches, ${errors} failed`)
      for (const m of matches) {
        ctx.log.warn(m.desc)
        if (m.action === 'add-header') msg.headers.add('X-URIBL-Match', m.desc)
      }
      const denied = matches.find((m) => m.action === 'deny')
      if (denied !== undefined) {
        ctx.result('fail', denied.desc)
        return reject({ code: 554, enhanced: '5.7.1', text: denied.desc })
      }
      const deferred = matches.find((m) => m.action === 'denysoft')
      if (deferred !== undefined) {
        ctx.result('fail', deferred.desc)
        return defer({ code: 451, enhanced: '4.7.1', text: deferred.desc })
      }
      if (matches.length > 0) {
        ctx.result('fail', matches.map((m) => m.desc).join('; '))
        return pass()
      }
      if (errors > 0) {
        ctx.result('error', `${errors} lookups failed`)
        if (options.on_error === 'defer')
          return defer({ code: 451, enhanced: '4.4.3', text: 'URI blocklists cannot be checked now, try again later' })
        return pass()
      }
      ctx.result('pass', `${names.length} names not listed`)
      return pass()
    }
    return { hooks: { dataPost } }
  },
})
