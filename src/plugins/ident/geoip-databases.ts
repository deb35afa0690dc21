/**
 * The MaxMind-format databases of ident/geoip, found by MaxMind's file names in one directory
 * (as geoipupdate writes them) and read whole into memory by the `maxmind` package, with an LRU
 * of recent answers. `refresh()` reopens a file whose modification time changed (geoipupdate
 * replaces them weekly); a file that no longer opens keeps the old copy and is logged.
 */
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { type AsnResponse, type CityResponse, type CountryResponse, open, type Reader } from 'maxmind'

export type DatabaseKind = 'city' | 'country' | 'asn'

/** File names per kind, the paid edition first; the first one present is used. */
const FILES: Readonly<Record<DatabaseKind, readonly string[]>> = {
  city: ['GeoIP2-City.mmdb', 'GeoLite2-City.mmdb'],
  country: ['GeoIP2-Country.mmdb', 'GeoLite2-Country.mmdb'],
  asn: ['GeoLite2-ASN.mmdb', 'GeoIP2-ISP.mmdb'],
}

/** What each kind's database says it is (its metadata's database_type). */
const TYPES: Readonly<Record<DatabaseKind, RegExp>> = {
  city: /City|Enterprise/,
  country: /Country|City|Enterprise/,
  asn: /ASN|ISP/,
}

interface Opened {
  readonly path: string
  readonly mtimeMs: number
  readonly reader: Reader<CityResponse & AsnResponse>
}

export interface GeoDatabases {
  readonly city: Reader<CityResponse> | undefined
  readonly country: Reader<CountryResponse> | undefined
  readonly asn: Reader<AsnResponse> | undefined
  /** The files in use, for the start-up log line. */
  readonly paths: readonly string[]
  /** Reopens the files that changed on disk; resolves with the paths reopened. */
  refresh(warn: (message: string) => void): Promise<readonly string[]>
}

const CACHE_ENTRIES = 10_000

async function openFile(kind: DatabaseKind, path: string): Promise<Opened> {
  const { mtimeMs } = await stat(path)
  let reader: Reader<CityResponse & AsnResponse>
  try {
    reader = await open<CityResponse & AsnResponse>(path, { cache: { max: CACHE_ENTRIES } })
  } catch (e) {
    throw new Error(`${path}: not a MaxMind database: ${(e as Error).message}`)
  }
  const type = reader.metadata.databaseType
  if (!TYPES[kind].test(type)) throw new Error(`${path}: a ${type} database, not a ${kind} database`)
  return { path, mtimeMs, reader }
}

/** The first file of the kind present in `dir`, or undefined. */
async function findFile(dir: string, kind: DatabaseKind): Promise<string | undefined> {
  for (const name of FILES[kind]) {
    const path = join(dir, name)
    if (
      await stat(path).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return path
  }
  return undefined
}

/**
 * Opens the databases in `dir`; throws (for a start-up error) when there are none, or one does
 * not open or is of the wrong type.
 */
export async function openGeoDatabases(dir: string): Promise<GeoDatabases> {
  const opened: Partial<Record<DatabaseKind, Opened>> = {}
  for (const kind of ['city', 'country', 'asn'] as const) {
    const path = await findFile(dir, kind)
    if (path !== undefined) opened[kind] = await openFile(kind, path)
  }
  if (Object.keys(opened).length === 0) {
    const names = Object.values(FILES).flat().join(', ')
    throw new Error(`no GeoIP database in ${dir} (looked for ${names})`)
  }
  return {
    get city() {
      return opened.city?.reader
    },
    get country() {
      return opened.country?.reader
    },
    get asn() {
      return opened.asn?.reader
    },
    paths: Object.values(opened).map((o) => o.path),
    async refresh(warn) {
      const reopened: string[] = []
      for (const kind of ['city', 'country', 'asn'] as const) {
        const old = opened[kind]
        if (old === undefined) continue
        try {
          const { mtimeMs } = await stat(old.path)
          if (mtimeMs === old.mtimeMs) continue
          opened[kind] = await openFile(kind, old.path)
          reopened.push(old.path)
        } catch (e) {
          warn(`keeping the GeoIP database in memory: ${(e as Error).message}`)
        }
      }
      return reopened
    },
  }
}
