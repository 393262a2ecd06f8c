import { type CommandNode, leafCommands } from './argv.ts'
import { type Command, type OptionSpec, OPTIONS, defaultFor } from './options.ts'
import { BOOLEAN_WORDS, DURATION_HINT } from './resolve.ts'

const PLACEHOLDER: Record<OptionSpec['kind'], string> = {
  string: '<value>',
  list: '<list>',
  bool: '',
  int: '<n>',
  choice: '<value>',
  url: '<url>',
  duration: '<duration>',
}

/** `--flag <value>`, `--flag` for a boolean, and `--no-flag` too for one that is on by default. */
export function flagSynopsis(spec: OptionSpec): string {
  if (spec.kind === 'bool') {
    return spec.default === 'true' ? `--${spec.flag}, --no-${spec.flag}` : `--${spec.flag}`
  }
  return `--${spec.flag} ${PLACEHOLDER[spec.kind]}`
}

function describeOption(spec: OptionSpec, commands: readonly Command[]): string {
  const parts = [spec.description]
  if (spec.choices) parts.push(`(one of ${spec.choices.join(', ')})`)
  if (spec.kind === 'duration') parts.push(`(${DURATION_HINT})`)
  const defaults = new Set(commands.map((c) => defaultFor(spec, c)).filter((d) => d !== undefined))
  if (defaults.size === 1 && !spec.secret) parts.push(`[default: ${[...defaults][0]}]`)
  if (spec.env) parts.push(`[env: ${spec.env}]`)
  return parts.join(' ')
}

function wrap(text: string, indent: string, width = 100): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  if (line !== '') lines.push(indent + line)
  return lines.join('\n')
}

/**
 * The `--help` text of a command node: its usage, subcommands, and the options of every mode
 * under it (for a group such as `firehose`, those all its modes share).
 */
export function helpText(node: CommandNode, path: readonly string[]): string {
  const commands = leafCommands(node)
  const usage =
    path[0] === 'firehose'
      ? `atkafka [options] firehose [options] ${path[1] ?? 'relay|tap'} [options]`
      : node.children
        ? `atkafka [options] <command> [options]`
        : `atkafka [options] ${path.join(' ')} [options]`
  const out = [`Usage: ${usage}`, '', node.description, '']
  if (node.children) {
    out.push('Commands:')
    for (const child of node.children) {
      out.push(`  ${child.name.padEnd(14)}${child.description}`)
      for (const sub of child.children ?? []) {
        out.push(`    ${sub.name.padEnd(12)}${sub.description}`)
      }
    }
    out.push('')
  }
  const shared = OPTIONS.filter((spec) => commands.every((c) => spec.commands.includes(c)))
  out.push(node.children ? 'Options (of every command under this one):' : 'Options:')
  for (const spec of shared) {
    out.push(`  ${flagSynopsis(spec)}`)
    out.push(wrap(describeOption(spec, commands), '      '))
  }
  out.push('  -h, --help')
  out.push('      Show this help')
  out.push('  -V, --version')
  out.push('      Print the version')
  out.push('')
  out.push(
    wrap(
      `Options may come before the command words or after them, with one dash or two (-stdout is --stdout). Booleans take --x, --x=true or --x=false (${BOOLEAN_WORDS}). List options take commas and may be repeated. An option's flag wins over its environment variable, which wins over a .env file in the working directory.`,
      '',
    ),
  )
  return out.join('\n') + '\n'
}
