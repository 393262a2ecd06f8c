import { existsSync, readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { Command as Commander, CommanderError, Option } from 'commander'
import { type CommonConfig, relayConfig, Values } from './config/config.ts'
import { type Command, type OptionSpec, defaultFor, optionsFor } from './config/options.ts'
import { resolveOptions } from './config/resolve.ts'
import { AtKafkaError, ConfigError, errorMessage } from './errors.ts'
import { jetstreamConfig } from './jetstream/config.ts'
import { labelsConfig } from './labels/config.ts'
import { createLogger } from './logger.ts'
import { ozoneConfig } from './ozone/config.ts'
import { tapConfig } from './tap/config.ts'
import type { ServiceDeps } from './service.ts'

export type Env = Readonly<Record<string, string | undefined>>

/** The process environment with a `.env` file of the working directory underneath it. */
export function loadEnv(cwd: string, env: Env): Env {
  const file = `${cwd}/.env`
  if (!existsSync(file)) return env
  return { ...parseEnv(readFileSync(file, 'utf8')), ...env }
}

function helpText(spec: OptionSpec, command: Command): string {
  const parts = [spec.description]
  if (spec.choices) parts.push(`(${spec.choices.join('|')})`)
  const def = defaultFor(spec, command)
  if (def !== undefined && !spec.secret) parts.push(`[default: ${def}]`)
  if (spec.env) parts.push(`[env: ${spec.env}]`)
  return parts.join(' ')
}

function addOptions(cmd: Commander, command: Command): Commander {
  for (const spec of optionsFor(command)) {
    const flags = spec.kind === 'bool' ? `--${spec.flag}` : `--${spec.flag} <value>`
    cmd.addOption(new Option(flags, helpText(spec, command)))
  }
  return cmd
}

export interface CliIo {
  argv: readonly string[]
  env: Env
  deps: Omit<ServiceDeps, 'logger'>
  /** Where usage errors and help go. */
  stderr: NodeJS.WritableStream
  stdoutText: NodeJS.WritableStream
}

type Runner = (command: Command, cli: Record<string, unknown>) => Promise<void>

function buildProgram(run: Runner, io: CliIo): Commander {
  const program = new Commander('atkafka')
    .description(
      'Stream AT Protocol events (relay firehose, Tap, Ozone, labelers) into Apache Kafka',
    )
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdoutText.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError(false)
  const firehose = program
    .command('firehose')
    .description('Stream repository events from a relay or from Tap')
  addOptions(
    firehose
      .command('relay')
      .description("Subscribe to a relay's com.atproto.sync.subscribeRepos")
      .exitOverride(),
    'relay',
  ).action((opts: Record<string, unknown>) => run('relay', opts))
  addOptions(
    firehose
      .command('tap')
      .description("Read events from Tap's /channel WebSocket, acking each once Kafka has it")
      .exitOverride(),
    'tap',
  ).action((opts: Record<string, unknown>) => run('tap', opts))
  addOptions(
    program
      .command('ozone-events')
      .description(
        "Poll an Ozone's moderation events (tools.ozone.moderation.queryEvents) into Kafka",
      )
      .exitOverride(),
    'ozone',
  ).action((opts: Record<string, unknown>) => run('ozone', opts))
  addOptions(
    program
      .command('labels')
      .description("Stream a labeler's com.atproto.label.subscribeLabels into Kafka")
      .exitOverride(),
    'labels',
  ).action((opts: Record<string, unknown>) => run('labels', opts))
  addOptions(
    program
      .command('jetstream')
      .description("Read repository events from a Jetstream instance's /subscribe WebSocket")
      .exitOverride(),
    'jetstream',
  ).action((opts: Record<string, unknown>) => run('jetstream', opts))
  return program
}

/**
 * The logger of a mode (on stderr when stdout carries the events), then the mode itself. Each
 * mode's code is loaded only when it runs: what one mode needs (e.g. the Ozone client) costs the
 * others no memory.
 */
async function start<C extends CommonConfig>(
  config: C,
  load: () => Promise<(config: C, deps: ServiceDeps) => Promise<void>>,
  io: CliIo,
): Promise<void> {
  const logger = createLogger({ debug: config.debug, toStderr: config.output.kind === 'stdout' })
  const run = await load()
  return run(config, { ...io.deps, logger })
}

/** Build the typed config of `command` and run it until stopped. */
async function runCommand(
  command: Command,
  cli: Record<string, unknown>,
  io: CliIo,
): Promise<void> {
  const values = new Values(resolveOptions(command, cli, io.env))
  switch (command) {
    case 'relay':
      return await start(
        relayConfig(values),
        async () => (await import('./relay/run.ts')).runRelay,
        io,
      )
    case 'tap':
      return await start(tapConfig(values), async () => (await import('./tap/run.ts')).runTap, io)
    case 'ozone':
      return await start(
        ozoneConfig(values),
        async () => (await import('./ozone/run.ts')).runOzone,
        io,
      )
    case 'labels':
      return await start(
        labelsConfig(values),
        async () => (await import('./labels/run.ts')).runLabels,
        io,
      )
    case 'jetstream':
      return await start(
        jetstreamConfig(values),
        async () => (await import('./jetstream/run.ts')).runJetstream,
        io,
      )
  }
}

/**
 * Run the CLI; returns the process exit code (0 ok, 1 runtime failure, 2 usage or config error).
 */
export async function main(io: CliIo): Promise<number> {
  const program = buildProgram((command, cli) => runCommand(command, cli, io), io)
  try {
    await program.parseAsync([...io.argv], { from: 'user' })
    return 0
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; commander already printed usage errors.
      return err.exitCode === 0 ? 0 : 2
    }
    if (err instanceof ConfigError) {
      io.stderr.write(`atkafka: error: ${err.message}\n`)
      return 2
    }
    const kind = err instanceof AtKafkaError ? err.name : 'Error'
    io.stderr.write(`atkafka: ${kind}: ${errorMessage(err)}\n`)
    return 1
  }
}

/** Entry point of bin/atkafka: wires signals to one AbortController; never calls process.exit. */
export async function cliMain(): Promise<void> {
  const controller = new AbortController()
  const onSignal = () => controller.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.exitCode = await main({
    argv: process.argv.slice(2),
    env: loadEnv(process.cwd(), process.env),
    deps: { signal: controller.signal, stdout: process.stdout },
    stderr: process.stderr,
    stdoutText: process.stdout,
  })
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
}
