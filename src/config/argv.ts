import { ConfigError } from '../errors.ts'
import { type Command, type OptionSpec, OPTION_BY_FLAG } from './options.ts'
import { parseBool } from './resolve.ts'

/**
 * The command tree, as at-kafka's: `atkafka [global flags] firehose [firehose flags] relay|tap
 * [mode flags]` and `atkafka [global flags] ozone-events [flags]` (plus `labels`).
 */
export interface CommandNode {
  name: string
  description: string
  /** Set on a leaf: the mode it runs. */
  command?: Command
  children?: readonly CommandNode[]
}

export const COMMAND_TREE: CommandNode = {
  name: 'atkafka',
  description:
    'Stream AT Protocol events (relay firehose, Tap, Ozone, labelers, Jetstream) into Apache Kafka',
  children: [
    {
      name: 'firehose',
      description: 'Stream repository events from a relay or from Tap',
      children: [
        {
          name: 'relay',
          command: 'relay',
          description: "Subscribe to a relay's com.atproto.sync.subscribeRepos",
        },
        {
          name: 'tap',
          command: 'tap',
          description: "Read events from Tap's /channel WebSocket, acking each once Kafka has it",
        },
      ],
    },
    {
      name: 'ozone-events',
      command: 'ozone',
      description:
        "Poll an Ozone's moderation events (tools.ozone.moderation.queryEvents) into Kafka",
    },
    {
      name: 'labels',
      command: 'labels',
      description: "Stream a labeler's com.atproto.label.subscribeLabels into Kafka",
    },
    {
      name: 'jetstream',
      command: 'jetstream',
      description: "Read repository events from a Jetstream instance's /subscribe WebSocket",
    },
  ],
}

/** A command-line mistake: the message is one line, `path` the command it was found under. */
export class UsageError extends ConfigError {
  override name = 'UsageError'
  readonly path: readonly string[]
  constructor(message: string, path: readonly string[]) {
    super(message)
    this.path = path
  }
}

export type FlagValue = string | boolean | string[]

export interface ParsedArgv {
  /** Command words given, e.g. `['firehose', 'relay']`. */
  path: string[]
  /** The node the path leads to. */
  node: CommandNode
  /** Flag values by flag name; a list flag's repeats in order. */
  flags: Map<string, FlagValue>
  help: boolean
  version: boolean
}

interface Occurrence {
  spec: OptionSpec
  value: string | boolean
  /** The command word the flag followed (`atkafka` before any). */
  level: string
}

/** Every option of every leaf under `node`. */
export function leafCommands(node: CommandNode): Command[] {
  if (node.command !== undefined) return [node.command]
  return (node.children ?? []).flatMap(leafCommands)
}

function helpHint(path: readonly string[]): string {
  return `see ${['atkafka', ...path].join(' ')} --help`
}

function sameValue(spec: OptionSpec, a: string | boolean, b: string | boolean): boolean {
  if (spec.kind === 'bool') {
    const norm = (v: string | boolean) => (typeof v === 'boolean' ? v : (parseBool(v) ?? v))
    return norm(a) === norm(b)
  }
  return a === b
}

function shown(spec: OptionSpec, value: string | boolean): string {
  if (spec.secret) return '(hidden)'
  return typeof value === 'boolean' ? String(value) : `"${value}"`
}

/**
 * Split a command line into command words and flags, as urfave/cli and Go's flag package read
 * it: `--flag value`, `--flag=value`, the same with one dash (`-stdout`, `-relay-host x`),
 * booleans as `--x`, `--x=true|false` or `--no-x`. Flags may come at any level (before
 * `firehose`, before `relay`/`tap`, after the command). A list flag given several times keeps
 * every value; another flag given twice at one level keeps the last, and at two levels with
 * different values is an error naming both.
 */
export function parseArgv(argv: readonly string[]): ParsedArgv {
  const path: string[] = []
  let node = COMMAND_TREE
  const occurrences: Occurrence[] = []
  let help = false
  let version = false
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!
    if (token === '--') {
      if (i + 1 < argv.length) {
        throw new UsageError(`unexpected argument '${argv[i + 1]}'; ${helpHint(path)}`, path)
      }
      break
    }
    if (token.startsWith('-') && token !== '-') {
      const body = token.replace(/^--?/, '')
      const eq = body.indexOf('=')
      const name = eq === -1 ? body : body.slice(0, eq)
      const inline = eq === -1 ? undefined : body.slice(eq + 1)
      if (name === 'help' || name === 'h') {
        help = true
        continue
      }
      if (name === 'version' || name === 'V') {
        version = true
        continue
      }
      let spec = OPTION_BY_FLAG.get(name)
      let negated = false
      if (spec === undefined && name.startsWith('no-')) {
        const base = OPTION_BY_FLAG.get(name.slice(3))
        if (base?.kind === 'bool') {
          spec = base
          negated = true
        }
      }
      if (spec === undefined) {
        throw new UsageError(`unknown option '${token}'; ${helpHint(path)}`, path)
      }
      let value: string | boolean
      if (spec.kind === 'bool') {
        if (negated && inline !== undefined) {
          throw new UsageError(`option '--${name}' takes no value; ${helpHint(path)}`, path)
        }
        value = negated ? false : (inline ?? true)
      } else if (inline !== undefined) {
        value = inline
      } else if (i + 1 < argv.length) {
        value = argv[++i]!
      } else {
        throw new UsageError(`option '--${name}' needs a value; ${helpHint(path)}`, path)
      }
      occurrences.push({ spec, value, level: path.at(-1) ?? 'atkafka' })
      continue
    }
    const child = node.children?.find((c) => c.name === token)
    if (child === undefined) {
      const what = node.children ? 'unknown command' : 'unexpected argument'
      throw new UsageError(`${what} '${token}'; ${helpHint(path)}`, path)
    }
    path.push(token)
    node = child
  }
  const flags = new Map<string, FlagValue>()
  const seen = new Map<string, Occurrence>()
  for (const occ of occurrences) {
    const { spec } = occ
    if (spec.kind === 'list') {
      const prev = flags.get(spec.flag)
      flags.set(spec.flag, [...(Array.isArray(prev) ? prev : []), String(occ.value)])
      continue
    }
    const prev = seen.get(spec.flag)
    if (prev !== undefined && prev.level !== occ.level && !sameValue(spec, prev.value, occ.value)) {
      throw new UsageError(
        `--${spec.flag} given twice with different values: ${shown(spec, prev.value)} after '${prev.level}' and ${shown(spec, occ.value)} after '${occ.level}'`,
        path,
      )
    }
    seen.set(spec.flag, occ)
    flags.set(spec.flag, occ.value)
  }
  if (!help && !version && node.command !== undefined) {
    for (const flag of flags.keys()) {
      const spec = OPTION_BY_FLAG.get(flag)!
      if (!spec.commands.includes(node.command)) {
        throw new UsageError(
          `option '--${flag}' does not apply to ${['atkafka', ...path].join(' ')}; ${helpHint(path)}`,
          path,
        )
      }
    }
  }
  return { path, node, flags, help, version }
}
