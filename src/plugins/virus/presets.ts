/**
 * qpsmtpd's vendor virus plugins as presets of virus/scanner (scanner.ts): each keeps its qpsmtpd
 * name, its arguments and defaults, its vendor's command line (from the qpsmtpd plugin), the exit
 * codes and output lines qpsmtpd read, and the headers it added. docs/plugins/virus/scanner.md
 * shows each command line. And `virus/scanner` itself, for any other scanner.
 */
import { type LinePattern, linePattern } from '../../clients/scanner/verdict.ts'
import { compilePerlPattern, perlPatternAt } from '../../config/perl-pattern.ts'
import { opt } from '../../host/options.ts'
import { parseTarget } from '../../net/index.ts'
import { commonScannerOptions, type ScannerPreset, type ScannerSetup, scannerPlugin, yes } from './scanner.ts'

type Common = { readonly timeout: number; readonly on_error: 'defer' | 'pass' }

/** qpsmtpd's "block on error" switches map onto on_error; absent, on_error (default defer) decides. */
const policy = (flag: string | undefined, option: string, o: Common): 'defer' | 'pass' =>
  flag === undefined ? o.on_error : yes(flag, option) ? 'defer' : 'pass'

const base = (o: Common) => ({ timeoutMs: o.timeout * 1000, copyInfectedTo: [] as string[], checkedAlways: false })
const kb = (n: number) => (n > 0 ? n * 1024 : undefined)

/** Kaspersky 5 server suite: aveclient asks the aveserver daemon (`aveclient -p SOCKET -s FILE`). */
const aveclientOptions = {
  avclient_bin: opt.string({ default: '/opt/kav/bin/aveclient', description: 'the aveclient program' }),
  avdaemon_sock: opt.string({ default: '/var/run/aveserver', description: "aveserver's socket" }),
  blockonerror: opt.optionalString({ description: "qpsmtpd's switch for on_error: 1 defer, 0 pass" }),
  max_size: opt.number({ default: 0, min: 0, description: 'larger messages (KB) are not scanned; 0: no limit' }),
  ...commonScannerOptions,
} as const

const aveclient: ScannerPreset<typeof aveclientOptions> = {
  name: 'virus/aveclient',
  description: "scan with Kaspersky's aveclient (aveserver daemon); refuse viruses",
  options: aveclientOptions,
  setup: (o) => ({
    ...base(o),
    scanner: {
      kind: 'program',
      argv: [o.avclient_bin, '-p', o.avdaemon_sock, '-s', '{file}'],
      cleanExit: [0],
      // 2 unknown virus, 3 suspicious, 4 infected, 6 encrypted, 8 corrupted: qpsmtpd refused them all.
      infectedExit: [2, 3, 4, 6, 8],
      virus: linePattern(/\b(?:infected|suspicion|suspicious|warning)\b\W*(\S.*)$/i),
    },
    maxSize: kb(o.max_size),
    multipartOnly: false,
    deny: 'all',
    headerPrefix: 'X-Virus',
    placement: 'end',
    checked: (me) => `Checked by Kaspersky on ${me}`,
    onError: policy(o.blockonerror, 'blockonerror', o),
  }),
}

/** BitDefender Linux Edition: `bdc --mail --all --arc FILE`, read by its `infected: NAME` lines. */
const bitdefenderOptions = {
  bitdefender_location: opt.string({ default: '/opt/bdc/bdc', description: 'the bdc program' }),
  deny_viruses: opt.string({ default: 'yes', description: 'yes: refuse; no: mark with X-Virus-* fields' }),
  max_size: opt.number({ default: 128, min: 0, description: 'larger messages (KB) are not scanned; 0: no limit' }),
  ...commonScannerOptions,
} as const
const bitdefender: ScannerPreset<typeof bitdefenderOptions> = {
  name: 'virus/bitdefender',
  description: 'scan multipart messages with BitDefender (bdc)',
  options: bitdefenderOptions,
  setup: (o) => ({
    ...base(o),
    scanner: {
      kind: 'program',
      argv: [o.bitdefender_location, '--mail', '--all', '--arc', '{file}'],
      cleanExit: [0],
      infectedExit: [],
      virus: linePattern(/infected: (.+)$/),
      namesDecide: true,
    },
    maxSize: kb(o.max_size),
    multipartOnly: true,
    deny: yes(o.deny_viruses, 'deny_viruses') ? 'all' : 'none',
    headerPrefix: 'X-Virus',
    placement: 'end',
    checked: undefined,
    onError: o.on_error,
  }),
}

/** H+BEDV AntiVir: `antivir ... -rs FILE`, exit 1 or 3 with `ALERT: [NAME type]` lines. */
const hbedvOptions = {
  hbedvscanner: opt.string({ default: '/usr/bin/antivir', description: 'the antivir program' }),
  max_size: opt.number({ default: 0, min: 0, description: 'larger messages (KB) are not scanned; 0: no limit' }),
  ...commonScannerOptions,
} as const
const hbedv: ScannerPreset<typeof hbedvOptions> = {
  name: 'virus/hbedv',
  description: 'scan with H+BEDV AntiVir; refuse the viruses config/hbedv_deny lists (all if empty)',
  options: hbedvOptions,
  setup: (o, { config }) => {
    const lines = config.located('hbedv_deny')
    const patterns = lines.map((l) => perlPatternAt(l, `^(?:${l.text})$`, { caseInsensitive: true }))
    return {
      ...base(o),
      scanner: {
        kind: 'program',
        argv: [o.hbedvscanner, '--archive-max-recursion=50', '--alltypes', '-z', '-noboot', '-nombr', '-rs', '{file}'],
        cleanExit: [0],
        infectedExit: [1, 3],
        virus: linePattern(/^ALERT: \[([^\]]+?)\s+(?:\w+)?\]/),
      },
      maxSize: kb(o.max_size),
      multipartOnly: false,
      deny: patterns.length === 0 ? 'all' : (name: string) => patterns.some((p) => p.test(name)),
      headerPrefix: 'X-H+BEDV-Virus',
      placement: 'top',
      checked: () => 'Checked',
      checkedAlways: true,
      onError: o.on_error,
    }
  },
}

/** Kaspersky kavscanner 4: marks viruses (never refuses) and can copy infected mail to an admin. */
const kavscannerOptions = {
  kavscanner_bin: opt.string({ default: '/opt/AVP/kavscanner', description: 'the kavscanner program' }),
  bcc_virusadmin: opt.list({ default: [], description: 'addresses that get a copy of infected messages' }),
  max_size: opt.number({ default: 0, min: 0, description: 'larger messages (KB) are not scanned; 0: no limit' }),
  ...commonScannerOptions,
} as const
const kavscanner: ScannerPreset<typeof kavscannerOptions> = {
  name: 'virus/kavscanner',
  description: 'scan with Kaspersky kavscanner; mark viruses, copy infected mail to bcc_virusadmin',
  options: kavscannerOptions,
  // A copy to the admin is an envelope edit: not allowed side by side with other scanners.
  concurrent: false,
  setup: (o) => ({
    ...base(o),
    scanner: {
      kind: 'program',
      argv: [o.kavscanner_bin, '-Y', '-P', '-B', '-MP', '-MD', '-*', '{file}'],
      cleanExit: [0],
      infectedExit: [2, 3, 4, 8],
      virus: linePattern(/\b(?:infected|suspicion): (.+)$/),
    },
    maxSize: kb(o.max_size),
    multipartOnly: false,
    deny: 'none',
    headerPrefix: 'X-Virus',
    placement: 'end',
    checked: (me) => `Checked by ${me}`,
    checkedAlways: true,
    copyInfectedTo: o.bcc_virusadmin,
    onError: o.on_error,
  }),
}

/** Sophie (Sophos SAVI daemon): the file name on its socket, `1:NAME` or `0` back. */
const sophieOptions = {
  sophie_socket: opt.string({ default: '/var/run/sophie', description: "Sophie's socket" }),
  deny_viruses: opt.string({ default: 'yes', description: 'yes: refuse; no: mark with X-Virus-* fields' }),
  max_size: opt.number({ default: 128, min: 0, description: 'larger messages (KB) are not scanned; 0: no limit' }),
  ...commonScannerOptions,
} as const
const sophie: ScannerPreset<typeof sophieOptions> = {
  name: 'virus/sophie',
  description: 'scan multipart messages with the Sophie daemon (Sophos)',
  options: sophieOptions,
  setup: (o) => ({
    ...base(o),
    scanner: {
      kind: 'socket',
      target: parseTarget(o.sophie_socket, 4010),
      request: '{file}\n',
      infected: linePattern(/^1:?(.*)$/),
      clean: linePattern(/^0(?::.*)?$/),
    },
    maxSize: kb(o.max_size),
    multipartOnly: true,
    deny: yes(o.deny_viruses, 'deny_viruses') ? 'all' : 'none',
    headerPrefix: 'X-Virus',
    placement: 'end',
    checked: (me) => `Checked by SOPHIE on ${me}`,
    onError: o.on_error,
  }),
}

/** McAfee uvscan: `uvscan --mime --unzip --secure --noboot FILE`, exit 13 with `Found ...` lines. */
const uvscanOptions = {
  uvscan_location: opt.string({ default: '/usr/local/bin/uvscan', description: 'the uvscan program' }),
  deny_viruses: opt.string({ default: 'yes', description: 'yes: refuse; no: mark with X-Virus-* fields' }),
  max_size: opt.number({ default: 245, min: 0, description: 'larger messages (KB) are not scanned; 0: no limit' }),
  ...commonScannerOptions,
} as const
const uvscan: ScannerPreset<typeof uvscanOptions> = {
  name: 'virus/uvscan',
  description: 'scan multipart messages with McAfee uvscan; refuse password-protected archives',
  options: uvscanOptions,
  setup: (o) => ({
    ...base(o),
    scanner: {
      kind: 'program',
      argv: [o.uvscan_location, '--mime', '--unzip', '--secure', '--noboot', '{file}'],
      cleanExit: [0],
      // 12 a virus it could not clean, 13 viruses found, 19 cleaned; 2, 6, 8, 15 are errors.
      infectedExit: [12, 13, 19],
      virus: linePattern(/(?:^|\W)Found:? (.+)$/),
      refusals: [
        { pattern: linePattern(/password-protected/), text: 'We do not accept password-protected zip files!' },
      ],
    },
    maxSize: kb(o.max_size),
    multipartOnly: true,
    deny: yes(o.deny_viruses, 'deny_viruses') ? 'all' : 'none',
    headerPrefix: 'X-Virus',
    placement: 'end',
    checked: (me) => `Checked by McAfee uvscan on ${me}`,
    onError: o.on_error,
  }),
}

/** Any other scanner: its command line (or socket), exit codes and output patterns as options. */
const genericOptions = {
  command: opt.optionalString({ description: 'the command line, words separated by spaces; {file} is the message' }),
  socket: opt.optionalString({ description: 'or a daemon that is sent `request` (path or host:port)' }),
  request: opt.string({ default: '{file}\\n', description: 'what the daemon is sent; \\n is a newline' }),
  clean_exit: opt.list({ default: ['0'], description: 'exit codes that mean clean' }),
  infected_exit: opt.list({ default: ['1'], description: 'exit codes that mean infected' }),
  virus_pattern: opt.string({
    description: 'a Perl pattern for output lines (or the reply) naming a virus; its first group is the name',
  }),
  clean_pattern: opt.optionalString({ description: 'a Perl pattern a clean run must also print (or the clean reply)' }),
  names_decide: opt.boolean({
    default: false,
    description: 'a line naming a virus means infected whatever the exit code',
  }),
  deny_viruses: opt.boolean({ default: true, description: 'refuse infected messages (else mark them)' }),
  max_size: opt.number({ default: 1024, min: 0, description: 'larger messages (KB) are not scanned; 0: no limit' }),
  scan_all: opt.boolean({ default: true, description: 'no: scan only multipart messages' }),
  header_prefix: opt.string({ default: 'X-Virus', pattern: /^[\x21-\x39\x3b-\x7e]{1,60}$/ }),
  checked_by: opt.optionalString({ description: 'X-Virus-Checked: Checked by <this> on <me>' }),
  ...commonScannerOptions,
} as const
const generic: ScannerPreset<typeof genericOptions> = {
  name: 'virus/scanner',
  description: 'scan with any virus scanner program or socket daemon',
  options: genericOptions,
  setup: (o) => {
    if ((o.command === undefined) === (o.socket === undefined)) throw new Error('give either command or socket')
    const pattern = (source: string, option: string): LinePattern => {
      try {
        return compilePerlPattern(source)
      } catch (e) {
        throw new Error(`option "${option}": ${(e as Error).message}`)
      }
    }
    const codes = (list: readonly string[], option: string) =>
      list.map((c) => {
        if (!/^\d{1,3}$/.test(c)) throw new Error(`option "${option}": "${c}" is not an exit code`)
        return Number(c)
      })
    const virus = pattern(o.virus_pattern, 'virus_pattern')
    const clean = o.clean_pattern === undefined ? undefined : pattern(o.clean_pattern, 'clean_pattern')
    const scanner: ScannerSetup['scanner'] =
      o.command !== undefined
        ? {
            kind: 'program',
            argv: o.command.split(/\s+/).filter((w) => w !== ''),
            cleanExit: codes(o.clean_exit, 'clean_exit'),
            infectedExit: codes(o.infected_exit, 'infected_exit'),
            virus,
            clean,
            namesDecide: o.names_decide,
          }
        : {
            kind: 'socket',
            target: parseTarget(o.socket ?? '', 0),
            request: o.request.replaceAll('\\n', '\n'),
            infected: virus,
            clean: clean ?? pattern('^0', 'clean_pattern'),
          }
    return {
      ...base(o),
      scanner,
      maxSize: kb(o.max_size),
      multipartOnly: !o.scan_all,
      deny: o.deny_viruses ? 'all' : 'none',
      headerPrefix: o.header_prefix,
      placement: 'end',
      checked: o.checked_by === undefined ? undefined : (me) => `Checked by ${o.checked_by} on ${me}`,
      onError: o.on_error,
    }
  },
}

export const virusScanner = scannerPlugin(generic)
export const aveclientScanner = scannerPlugin(aveclient)
export const bitdefenderScanner = scannerPlugin(bitdefender)
export const hbedvScanner = scannerPlugin(hbedv)
export const kavscannerScanner = scannerPlugin(kavscanner)
export const sophieScanner = scannerPlugin(sophie)
export const uvscanScanner = scannerPlugin(uvscan)
