/**
 * A plugin's manifest is checked at start-up, each problem at its config/plugins line: services
 * it requires that the server lacks, plugins it reads from that are missing or come later, and a
 * second plugin of the same name without an instance number.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ConfigErrors } from '../../src/config/config-error.ts'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { pass } from '../../src/host/verdict.ts'
import { scriptedDns, startTestServer } from '../../src/testing/index.ts'

const api = pathToFileURL(join(import.meta.dirname, '../../src/index.ts')).href

const pluginFile = (name: string, manifest: string) => `
import { definePlugin, pass } from '${api}'
export default definePlugin({
  name: '${name}',
  options: {},
  ${manifest}
  setup: () => ({ hooks: { rcpt: async () => pass() } }),
})
`

const needsDns = definePlugin({
  name: 'test/needs-dns',
  options: {},
  requires: ['dns'],
  setup: ({ dns }) => ({
    hooks: {
      connect: async () => {
        await dns.query('example.com', 'A')
        return pass()
      },
    },
  }),
})

describe('the plugin manifest', () => {
  let dir: string
  let plugins: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-manifest-'))
    await mkdir(join(dir, 'config'))
    await mkdir(join(dir, 'plugins/test'), { recursive: true })
    const files: Record<string, string> = {
      'needs-dns': "requires: ['dns'],",
      'needs-store': "requires: ['store', 'metrics', 'clock', 'net'],",
      reader: "after: ['test/writer', 'rcpt_ok'],",
      'needs-other': "after: ['test/absent'],",
      writer: '',
    }
    for (const [file, manifest] of Object.entries(files))
      await writeFile(join(dir, `plugins/test/${file}.ts`), pluginFile(`test/${file}`, manifest))
    await writeFile(join(dir, 'config/plugin_dirs'), `${join(dir, 'plugins')}\n`)
    await writeFile(join(dir, 'config/me'), 'mx.test\n')
    plugins = join(dir, 'config/plugins')
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('reports each problem at its config/plugins line, in file order', async () => {
    await writeFile(
      plugins,
      [
        'rcpt_ok',
        'test/needs-dns',
        'test/reader',
        'test/needs-other',
        'test/writer',
        'test/writer',
        'test/writer:2',
        'test/needs-store',
      ].join('\n'),
    )
    await assert.rejects(startTestServer({ configDir: join(dir, 'config') }), (e: unknown) => {
      assert.ok(e instanceof ConfigErrors, String(e))
      assert.deepEqual(
        e.errors.map((x) => [x.code, x.message]),
        [
          [
            'SMTPD_ERR_PLUGIN_REQUIRES',
            `${plugins}:2: plugin test/needs-dns requires the dns service, which this server does not have: ` +
              'startTestServer was given no dns; pass one, e.g. startTestServer({ dns: scriptedDns({ ... }) }) (qtsmtpd/testing)',
          ],
          [
            'SMTPD_ERR_PLUGIN_ORDER',
            `${plugins}:3: plugin test/reader reads the results of test/writer, which comes after it (${plugins}:5); ` +
              'load test/writer before it',
          ],
          [
            'SMTPD_ERR_PLUGIN_ORDER',
            `${plugins}:4: plugin test/needs-other reads the results of test/absent, which is not loaded; ` +
              'load test/absent before it',
          ],
          [
            'SMTPD_ERR_PLUGIN_DUPLICATE',
            `${plugins}:6: plugin test/writer is already loaded at ${plugins}:5; to run it twice, give each line ` +
              'an instance number (test/writer:1, test/writer:2)',
          ],
        ],
      )
      return true
    })
  })

  it('starts when the order is right and the services are there', async () => {
    await writeFile(plugins, ['rcpt_ok', 'test/writer', 'test/reader', 'test/needs-dns', 'test/needs-store'].join('\n'))
    const srv = await startTestServer({ configDir: join(dir, 'config'), dns: scriptedDns({}) })
    await srv.close()
  })

  it('tells the author of a plugin given in code to pass dns to the test server', async () => {
    await assert.rejects(
      startTestServer({ plugins: [needsDns()] }),
      (e: unknown) =>
        e instanceof Error &&
        e.message ===
          'plugins given in code: plugin test/needs-dns requires the dns service, which this server does not have: ' +
            'startTestServer was given no dns; pass one, e.g. startTestServer({ dns: scriptedDns({ ... }) }) (qtsmtpd/testing)',
    )
  })

  it('refuses a service name it does not know', async () => {
    const typo = definePlugin({
      name: 'test/typo',
      options: {},
      requires: ['dnss' as 'dns'],
      setup: () => ({ hooks: {} }),
    })
    await assert.rejects(
      startTestServer({ plugins: [typo()] }),
      /plugin test\/typo requires an unknown service "dnss" \(there are dns, store, metrics, clock, net\)/,
    )
  })
})
