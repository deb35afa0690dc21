/**
 * virus/clamav: qpsmtpd's plugin for ClamAV's command-line scanners, as a preset of virus/scanner:
 * `clamscan --stdout --no-summary [-d DATABASE] -` with the message on stdin (streamed), or
 * `clamdscan` (which hands it to clamd; `clamd_conf` goes to it as --config-file). Arguments in
 * qpsmtpd's `name=value` form. Exit 0 with `stdin: OK` is clean, exit 1 with `stdin: NAME FOUND`
 * infected; anything else, or a clean answer before the whole message was read, is a failure.
 *
 * Differs from qpsmtpd: the message goes on stdin (no spool file, no permissions to arrange),
 * `--config-file` only to clamdscan (today's clamscan refuses it: qpsmtpd's command always
 * failed with it), `database` is new, `back_compat`'s old ClamAV options are gone.
 */
import { basename } from 'node:path'
import { linePattern } from '../../clients/scanner/verdict.ts'
import { opt } from '../../host/options.ts'
import { commonScannerOptions, type ScannerPreset, scannerPlugin } from './scanner.ts'

/** qpsmtpd's syntax: `name=value` pairs, a leading bare path for clamscan_path, bare switches. */
export function translateClamavArgs(args: readonly string[]): readonly string[] {
  const out: string[] = []
  for (const [i, arg] of args.entries()) {
    const eq = arg.indexOf('=')
    if (eq > 0) out.push(arg.slice(0, eq), arg.slice(eq + 1))
    else if (i === 0 && arg.startsWith('/')) out.push('clamscan_path', arg)
    else if (arg === 'back_compat' || arg === 'declined_on_fail') out.push(arg, '1')
    else out.push(arg)
  }
  return out
}

const options = {
  clamscan_path: opt.string({ default: '/usr/bin/clamscan', description: 'clamscan, or clamdscan' }),
  clamd_conf: opt.optionalString({ description: "clamd's configuration, for clamdscan (--config-file)" }),
  database: opt.optionalString({ description: 'a signature database file or directory for clamscan (-d)' }),
  action: opt.enum(['add-header', 'reject'], { default: 'add-header', description: 'what to do with a virus' }),
  max_size: opt.number({ default: 524_288, min: 1, description: 'larger messages (bytes) are not scanned' }),
  tmp_dir: opt.optionalString({ description: 'accepted for qpsmtpd configurations: the message goes on stdin' }),
  back_compat: opt.boolean({ default: false, description: "accepted: its options are gone from ClamAV's scanners" }),
  declined_on_fail: opt.boolean({ default: false, description: "qpsmtpd's on_error pass" }),
  ...commonScannerOptions,
} as const

const clamav: ScannerPreset<typeof options> = {
  name: 'virus/clamav',
  description: "scan messages with ClamAV's clamscan (or clamdscan); mark or refuse viruses",
  options,
  translateArgs: translateClamavArgs,
  setup: (o) => ({
    scanner: {
      kind: 'program',
      argv: [
        o.clamscan_path,
        '--stdout',
        '--no-summary',
        ...(o.database === undefined ? [] : ['-d', o.database]),
        ...(o.clamd_conf !== undefined && basename(o.clamscan_path) === 'clamdscan'
          ? [`--config-file=${o.clamd_conf}`]
          : []),
        '-',
      ],
      cleanExit: [0],
      infectedExit: [1],
      virus: linePattern(/^(?:stdin|stream): (.+) FOUND$/),
      clean: linePattern(/^(?:stdin|stream): OK$/),
    },
    maxSize: o.max_size,
    multipartOnly: false,
    deny: o.action === 'reject' ? 'all' : 'none',
    headerPrefix: 'X-Virus',
    placement: 'end',
    checked: (me) => `Checked by ClamAV on ${me}`,
    checkedAlways: false,
    copyInfectedTo: [],
    timeoutMs: o.timeout * 1000,
    onError: o.declined_on_fail ? 'pass' : o.on_error,
  }),
}

export default scannerPlugin(clamav)
