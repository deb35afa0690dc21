import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isMultipart } from './content-type.ts'

describe('isMultipart', () => {
  const cases = [
    { name: 'mixed with a boundary', value: 'multipart/mixed; boundary="abc"', want: true },
    { name: 'folded, upper case, bare boundary', value: 'Multipart/Alternative;\r\n\tBOUNDARY=x1', want: true },
    { name: 'text', value: 'text/plain; charset=utf-8', want: false },
    { name: 'multipart without a boundary', value: 'multipart/mixed', want: false },
    { name: 'no field', value: undefined, want: false },
  ] as const
  for (const c of cases) it(c.name, () => assert.equal(isMultipart(c.value), c.want))
})
