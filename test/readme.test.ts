import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { optionsTable, replaceOptionsTable } from '../src/config/docs.ts'
import { OPTIONS } from '../src/config/options.ts'

const root = join(import.meta.dirname, '..')
const readme = readFileSync(join(root, 'README.md'), 'utf8')

describe('README', () => {
  it('has the configuration table generated from the option table (run `npm run docs`)', () => {
    assert.equal(replaceOptionsTable(readme, optionsTable()), readme)
    for (const spec of OPTIONS) {
      assert.ok(readme.includes(`--${spec.flag}`), spec.flag)
      if (spec.env) assert.ok(readme.includes(spec.env), spec.env)
    }
  })

  it('states the test command that .ci/run runs', () => {
    assert.match(readme, /```bash\nnpm test\n```/)
    const ci = readFileSync(join(root, '.ci', 'run'), 'utf8')
    assert.match(ci, /\nnpm test\n/)
  })
})
