import { flagSynopsis } from './help.ts'
import { type Command, OPTIONS, defaultFor } from './options.ts'

const COMMAND_NAMES: Record<Command, string> = {
  relay: 'relay',
  tap: 'tap',
  ozone: 'ozone-events',
  labels: 'labels',
  jetstream: 'jetstream',
}

const START = '<!-- options:start -->'
const END = '<!-- options:end -->'

function defaults(spec: (typeof OPTIONS)[number]): string {
  const seen = new Map<string, Command[]>()
  for (const c of spec.commands) {
    const d = defaultFor(spec, c)
    if (d === undefined) continue
    seen.set(d, [...(seen.get(d) ?? []), c])
  }
  if (seen.size === 0) return ''
  if (seen.size === 1) return `\`${[...seen.keys()][0]}\``
  return [...seen]
    .map(([d, cs]) => `\`${d}\` (${cs.map((c) => COMMAND_NAMES[c]).join(', ')})`)
    .join(', ')
}

/** The README's configuration table, generated from the option table. */
export function optionsTable(): string {
  const rows = [
    '| Flag | Environment variable | Default | Commands | Description |',
    '| --- | --- | --- | --- | --- |',
  ]
  for (const spec of OPTIONS) {
    const flag = `\`${flagSynopsis(spec)}\``
    const choices = spec.choices
      ? ` (one of ${spec.choices.map((c) => `\`${c}\``).join(', ')})`
      : ''
    rows.push(
      `| ${flag} | ${spec.env ? `\`${spec.env}\`` : ''} | ${defaults(spec)} | ${spec.commands
        .map((c) => COMMAND_NAMES[c])
        .join(', ')} | ${spec.description.replace(/\|/g, '\\|')}${choices} |`,
    )
  }
  return rows.join('\n') + '\n'
}

/** `readme` with the text between the options markers replaced by `table`. */
export function replaceOptionsTable(readme: string, table: string): string {
  const start = readme.indexOf(START)
  const end = readme.indexOf(END)
  if (start === -1 || end === -1 || end < start) {
    throw new Error(`README.md has no ${START} … ${END} section`)
  }
  return readme.slice(0, start + START.length) + '\n' + table + readme.slice(end)
}
