/**
 * ident/geoip (qpsmtpd's plugin): where the client is, from MaxMind-format databases (GeoLite2
 * or GeoIP2 City, Country and ASN) in `db_dir`: country, continent, city, autonomous system and,
 * with `distance`, how far from us. Kept as the connection's `GeoIp` and `GeoIpCountry` keys
 * (qpsmtpd's `geoip_*` notes: greylisting's `geoip` option reads the country); `too_far` costs
 * a karma point; X-GeoIP-* fields go on top of each message.
 *
 * Differs from qpsmtpd: the ASN comes from GeoLite2-ASN (qpsmtpd's GeoIP2 code had none); a
 * missing or unreadable database stops the start instead of leaving the plugin idle; changed
 * database files are reopened (checked at most once a minute); a city name that is not ASCII is
 * written as an RFC 2047 encoded word.
 */
import type { AsnResponse, CityResponse } from 'maxmind'
import { adjustKarma, GeoIp, GeoIpCountry, type GeoIpInfo } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { ConnectHook, DataPostHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import { normalizeIp } from '../../net/index.ts'
import { type GeoDatabases, openGeoDatabases } from './geoip-databases.ts'
import { identMetrics } from './metrics.ts'

/** qpsmtpd's radius of the earth (Math::Trig's great_circle_distance with 6378 km). */
const EARTH_RADIUS_KM = 6378
const REFRESH_EVERY_MS = 60_000

export default definePlugin({
  name: 'ident/geoip',
  description: 'country, continent, city, ASN and distance of the client from MaxMind databases; X-GeoIP-* fields',
  options: {
    db_dir: opt.string({ default: '/usr/local/share/GeoIP', description: 'the directory of the .mmdb files' }),
    distance: opt.optionalString({
      description: "our server's public IP address: its location is where distances are measured from",
    }),
    too_far: opt.number({ default: 0, min: 0, description: 'kilometres: farther clients lose a karma point (0: off)' }),
    add_headers: opt.boolean({ default: true, description: 'add X-GeoIP-Country, -Continent, -City and -ASN' }),
    loglevel: opt.loglevel(),
  },
  timeoutMs: 5_000,
  async setup({ options, paths, clock, metrics, name, log }) {
    const dir = paths.resolve(options.db_dir)
    const dbs = await openGeoDatabases(dir)
    const home = options.distance === undefined ? undefined : ourLocation(dbs, options.distance)
    if (options.too_far > 0 && home === undefined) throw new Error('option "too_far" needs "distance" (our address)')
    log.info(`GeoIP databases: ${dbs.paths.join(', ')}`)
    const recorded = identMetrics(metrics, name)
    let lastRefresh = clock.now()
    let refreshing = false

    /** Reopens changed files in the background: a connection never waits for a database load. */
    const refreshSometimes = () => {
      if (refreshing || clock.now() - lastRefresh < REFRESH_EVERY_MS) return
      refreshing = true
      lastRefresh = clock.now()
      dbs
        .refresh((m) => log.warn(m))
        .then(
          (reopened) => {
            refreshing = false
            if (reopened.length > 0) log.info(`GeoIP databases reopened: ${reopened.join(', ')}`)
          },
          (e: unknown) => {
            refreshing = false
            log.warn(`GeoIP databases not checked: ${(e as Error).message}`)
          },
        )
    }

    const connect: ConnectHook = (ctx) => {
      // XCLIENT runs the connect hooks again for another client: the old answer must not stay.
      ctx.connection.notes.set(GeoIp, undefined)
      ctx.connection.notes.set(GeoIpCountry, undefined)
      refreshSometimes()
      let info: GeoIpInfo | undefined
      try {
        info = locate(dbs, ctx.connection.remote.ip, home)
      } catch (e) {
        // A damaged record: this client goes on without a location, the others are not affected.
        recorded.record('failed')
        ctx.log.warn(`GeoIP lookup failed: ${(e as Error).message}`)
        ctx.result('error', (e as Error).message)
        return pass()
      }
      if (info === undefined) {
        recorded.record('unknown')
        ctx.result('skip', 'no results')
        return pass()
      }
      recorded.record('found')
      ctx.connection.notes.set(GeoIp, info)
      ctx.connection.notes.set(GeoIpCountry, info.country)
      if (options.too_far > 0 && info.distanceKm !== undefined && info.distanceKm > options.too_far)
        adjustKarma(ctx, -1)
      ctx.result('pass', describe(info))
      return pass()
    }

    // qpsmtpd deleted the fields a message arrived with and put each of ours on top, in this order.
    const dataPost: DataPostHook = (ctx, msg) => {
      const info = ctx.connection.notes.get(GeoIp)
      if (info === undefined) return pass()
      for (const [field, value] of [
        ['X-GeoIP-Country', info.country],
        ['X-GeoIP-Continent', info.continent],
        ['X-GeoIP-City', info.city],
        ['X-GeoIP-ASN', info.asn === undefined ? undefined : String(info.asn)],
      ] as const) {
        if (value === undefined) continue
        msg.headers.remove(field)
        msg.headers.prepend(field, encodedWords(value))
      }
      return pass()
    }

    return { hooks: { connect, ...(options.add_headers ? { dataPost } : {}) } }
  },
})

interface Point {
  readonly latitude: number
  readonly longitude: number
}

function ourLocation(dbs: GeoDatabases, address: string): Point {
  const ip = normalizeIp(address)
  if (ip === undefined) throw new Error(`option "distance": not an IP address: "${address}"`)
  if (dbs.city === undefined) throw new Error('option "distance" needs a City database (GeoLite2-City.mmdb)')
  const where = dbs.city.get(ip)?.location
  if (where?.latitude === undefined || where.longitude === undefined)
    throw new Error(`option "distance": the City database has no location for ${ip}`)
  return { latitude: where.latitude, longitude: where.longitude }
}

/** What the databases know of `address`; undefined when none knows it. */
function locate(dbs: GeoDatabases, address: string, home: Point | undefined): GeoIpInfo | undefined {
  const place: CityResponse | null = dbs.city?.get(address) ?? dbs.country?.get(address) ?? null
  const as: AsnResponse | null = dbs.asn?.get(address) ?? null
  const location = place !== null && 'location' in place ? place.location : undefined
  const latitude = location?.latitude
  const longitude = location?.longitude
  const at = latitude === undefined || longitude === undefined ? undefined : { latitude, longitude }
  const info: GeoIpInfo = {
    ...some('country', place?.country?.iso_code),
    ...some('countryName', place?.country?.names?.en),
    ...some('continent', place?.continent?.code),
    ...some('city', place !== null && 'city' in place ? place.city?.names?.en : undefined),
    ...some('latitude', at?.latitude),
    ...some('longitude', at?.longitude),
    ...some('distanceKm', home === undefined || at === undefined ? undefined : greatCircleKm(home, at)),
    ...some('asn', as?.autonomous_system_number),
    ...some('asnOrganization', as?.autonomous_system_organization),
  }
  return Object.keys(info).length === 0 ? undefined : info
}

/** qpsmtpd's log line: `NA, US, Milton, 7720 km`, with the ASN. */
function describe(info: GeoIpInfo): string {
  const parts = [info.continent, info.country, info.city].filter((p) => p !== undefined)
  if (info.asn !== undefined) parts.push(`AS${info.asn}`)
  if (info.distanceKm !== undefined) parts.push(`${info.distanceKm} km`)
  return parts.join(', ')
}

/** Rounded to the kilometre, on a sphere (qpsmtpd's accuracy: within about 1%). */
export function greatCircleKm(a: Point, b: Point): number {
  const rad = Math.PI / 180
  const dLat = (b.latitude - a.latitude) * rad
  const dLon = (b.longitude - a.longitude) * rad
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.latitude * rad) * Math.cos(b.latitude * rad) * Math.sin(dLon / 2) ** 2
  return Math.round(2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h))))
}

/**
 * A header value in ASCII: text with other characters becomes RFC 2047 `=?UTF-8?B?...?=` words,
 * each within the 75 characters of §2 (whole characters of at most 45 octets per word).
 */
export function encodedWords(text: string): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text
  const words: string[] = []
  let piece = ''
  for (const ch of text) {
    if (Buffer.byteLength(piece + ch) > 45) {
      words.push(piece)
      piece = ''
    }
    piece += ch
  }
  words.push(piece)
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w).toString('base64')}?=`).join(' ')
}

/** `{ key: value }`, or nothing for undefined (exactOptionalPropertyTypes). */
const some = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V }
