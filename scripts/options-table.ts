// Prints (or with --write, updates in README.md) the configuration table generated from the
// option table in src/config/options.ts, between <!-- options:start --> and <!-- options:end -->.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { optionsTable, replaceOptionsTable } from '../src/config/docs.ts'

const readme = join(import.meta.dirname, '..', 'README.md')
if (process.argv.includes('--write')) {
  writeFileSync(readme, replaceOptionsTable(readFileSync(readme, 'utf8'), optionsTable()))
} else {
  process.stdout.write(optionsTable())
}
