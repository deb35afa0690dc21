/**
 * virus/scanner: one plugin for virus scanners that are programs (an argument vector template,
 * exit codes and output patterns for clean / infected / error) or daemons handed a file name over
 * a socket. qpsmtpd's vendor plugins (virus/clamav, aveclient, bitdefender, hbedv, kavscanner,
 * sophie, uvscan) are this plugin with a preset each (presets.ts, clamav.ts): their qpsmtpd names
 * and arguments, their command lines, their headers. `scannerPlugin(preset)` makes one.
 *
 * Every scan has a deadline and the `on_error` policy; a message above `max_size` is not
 * scanned (never cut short); a scanner whose answer does not fit its rules fails (scanner/verdict.ts).
 */
import { ScannerError } from '../../clients/exchange.ts'
import { type ProgramScanner, scanWithProgram } from '../../clients/scanner/program.ts'
import { type SocketScanner, scanWithSocket } from '../../clients/scanner/socket.ts'
import type { ScanVerdict } from '../../clients/scanner/verdict.ts'
import type { ConfigView } from '../../host/config-view.ts'
import { adjustKarma, failedCheck, failureOptions, Naughty } from '../../host/conventions.ts'
import { definePlugin, type PluginFactory } from '../../host/define-plugin.ts'
import type { DataPostHook } from '../../host/hook-map.ts'
import type { MessageHeaders } from '../../host/message.ts'
import { type OptionSchema, type OptionsOf, opt } from '../../host/options.ts'
import type { Paths } from '../../host/paths.ts'
import { pass, reject } from '../../host/verdict.ts'
import { isMultipart } from '../../message/content-type.ts'
import { scanMetrics } from '../../metrics/index.ts'

/** What a preset's options turn into. */
export interface ScannerSetup {
  readonly scanner: ({ readonly kind: 'program' } & ProgramScanner) | ({ readonly kind: 'socket' } & SocketScanner)
  /** Larger messages (bytes) are not scanned; undefined: no limit. */
  readonly maxSize: number | undefined
  readonly multipartOnly: boolean
  /** Which viruses refuse the message; the others are marked with headers. */
  readonly deny: 'all' | 'none' | ((name: string) => boolean)
  /** `X-Virus` gives X-Virus-Found, X-Virus-Details, X-Virus-Checked. */
  readonly headerPrefix: string
  /** Fields go at the `top` of the header section, or at the `end` (as each qpsmtpd plugin did). */
  readonly placement: 'top' | 'end'
  /** The X-...-Checked value (`me` is the host name); with `always`, also on infected messages. */
  readonly checked: ((me: string) => string) | undefined
  readonly checkedAlways: boolean
  /** Addresses that get a copy of an infected message (kavscanner's bcc_virusadmin). */
  readonly copyInfectedTo: readonly string[]
  readonly timeoutMs: number
  readonly onError: 'defer' | 'pass'
}

export interface ScannerPreset<S extends OptionSchema> {
  readonly name: string
  readonly aliases?: readonly string[]
  readonly description: string
  readonly options: S
  translateArgs?(args: readonly string[]): readonly string[]
  /** False for a preset that edits the envelope (a copy to an admin). */
  readonly concurrent?: boolean
  setup(options: OptionsOf<S>, api: { readonly config: ConfigView; readonly paths: Paths }): ScannerSetup
}

/** Reads qpsmtpd's yes/no/1/0 switches (deny_viruses, blockonerror, ...). */
export function yes(value: string | boolean, option: string): boolean {
  if (typeof value === 'boolean') return value
  const v = value.trim().toLowerCase()
  if (['1', 'yes', 'true', 'on'].includes(v)) return true
  if (['0', 'no', 'false', 'off', ''].includes(v)) return false
  throw new Error(`option "${option}": expected yes or no, got "${value}"`)
}

/** Options every scanner preset takes besides its own. */
export const commonScannerOptions = {
  timeout: opt.number({ default: 60, min: 0.1, max: 3600, description: 'seconds for one scan' }),
  ...failureOptions,
  loglevel: opt.loglevel(),
} as const

function addFields(headers: MessageHeaders, setup: ScannerSetup, fields: readonly [string, string][]): void {
  if (setup.placement === 'end') for (const [name, value] of fields) headers.add(name, value)
  else for (const [name, value] of fields) headers.prepend(name, value)
}

export function scannerPlugin<S extends OptionSchema>(preset: ScannerPreset<S>): PluginFactory<S> {
  return definePlugin({
    name: preset.name,
    ...(preset.aliases === undefined ? {} : { aliases: preset.aliases }),
    description: preset.description,
    options: preset.options,
    ...(preset.translateArgs === undefined ? {} : { translateArgs: preset.translateArgs }),
    timeoutMs: 3_700_000,
    concurrent: preset.concurrent ?? true,
    setup({ options, config, paths, net, metrics, name, server }) {
      const setup = preset.setup(options, { config, paths })
      const recorded = scanMetrics(metrics, name)
      const files = { dir: server.spoolDir }

      const scan = (msg: Parameters<DataPostHook>[1], signal: AbortSignal): Promise<ScanVerdict> =>
        setup.scanner.kind === 'program'
          ? scanWithProgram(setup.scanner, () => msg.stream(), {
              run: net.run,
              timeoutMs: setup.timeoutMs,
              signal,
              files,
            })
          : scanWithSocket(setup.scanner, () => msg.stream(), {
              connect: net.connect,
              timeoutMs: setup.timeoutMs,
              signal,
              files,
            })

      const dataPost: DataPostHook = async (ctx, msg) => {
        if (setup.maxSize !== undefined && msg.size > setup.maxSize) {
          recorded.record('skipped')
          ctx.result('skip', `too large (${msg.size} > ${setup.maxSize} bytes)`)
          return pass()
        }
        if (setup.multipartOnly && !isMultipart(msg.headers.first('Content-Type'))) {
          recorded.record('skipped')
          ctx.result('skip', 'not multipart')
          return pass()
        }
        const started = performance.now()
        let verdict: ScanVerdict
        try {
          verdict = await scan(msg, ctx.signal)
        } catch (e) {
          const ms = performance.now() - started
          recorded.record('failed', ms / 1000)
          if (!(e instanceof ScannerError)) throw e
          return failedCheck(
            ctx,
            { on_error: setup.onError },
            'virus scanner',
            `${e.failure}: ${e.message} (${ms.toFixed(0)} ms)`,
          )
        }
        const ms = performance.now() - started
        const checked: [string, string][] =
          setup.checked === undefined ? [] : [[`${setup.headerPrefix}-Checked`, setup.checked(ctx.server.me)]]
        if (verdict.kind === 'clean') {
          recorded.record('clean', ms / 1000)
          ctx.result('pass', `clean, ${ms.toFixed(0)} ms`)
          addFields(msg.headers, setup, checked)
          return pass()
        }
        recorded.record('infected', ms / 1000)
        adjustKarma(ctx, -1)
        if (verdict.kind === 'refuse') {
          ctx.result('fail', `${verdict.text}, ${ms.toFixed(0)} ms`)
          return reject({ code: 554, enhanced: '5.7.1', text: verdict.text })
        }
        const found = verdict.names.join(', ')
        ctx.get(Naughty).push(`(${ctx.plugin}) virus ${found}`)
        const { deny } = setup
        const denied = deny === 'all' || (typeof deny === 'function' && verdict.names.some(deny))
        ctx.result('fail', `virus ${found}${denied ? '' : ' (marked)'}, ${ms.toFixed(0)} ms`)
        if (denied) return reject({ code: 554, enhanced: '5.7.1', text: `Virus found: ${found}` })
        addFields(msg.headers, setup, [
          [`${setup.headerPrefix}-Found`, 'Yes'],
          [`${setup.headerPrefix}-Details`, found],
          ...(setup.checkedAlways ? checked : []),
        ])
        for (const address of setup.copyInfectedTo) ctx.transaction.addRecipient(address)
        return pass()
      }

      return { hooks: { dataPost } }
    },
  })
}
