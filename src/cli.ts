import { existsSync, readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { parseArgv } from './config/argv.ts'
import { type CommonConfig, relayConfig, Values } from './config/config.ts'
import { helpText } from './config/help.ts'
import { type Command, propertyOf } from './config/options.ts'
import { checkRequired, resolveOptions } from './config/resolve.ts'
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

export interface CliIo {
  argv: readonly string[]
  env: Env
  deps: Omit<ServiceDeps, 'logger'>
  /** Where usage errors and help go. */
  stderr: NodeJS.WritableStream
  stdoutText: NodeJS.WritableStream
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
  printConfig: boolean,
): Promise<void> {
  if (printConfig) {
    io.stdoutText.write(JSON.stringify(hideSecrets(config), null, 2) + '\n')
    return
  }
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
  const resolved = resolveOptions(command, cli, io.env)
  checkRequired(command, resolved)
  const values = new Values(resolved)
  const print = values.bool('print-config')
  switch (command) {
    case 'relay':
      return await start(
        relayConfig(values),
        async () => (await import('./relay/run.ts')).runRelay,
        io,
        print,
      )
    case 'tap':
      return await start(
        tapConfig(values),
        async () => (await import('./tap/run.ts')).runTap,
        io,
        print,
      )
    case 'ozone':
      return await start(
        ozoneConfig(values),
        async () => (await import('./ozone/run.ts')).runOzone,
        io,
        print,
      )
    case 'labels':
      return await start(
        labelsConfig(values),
        async () => (await import('./labels/run.ts')).runLabels,
        io,
        print,
      )
    case 'jetstream':
      return await start(
        jetstreamConfig(values),
        async () => (await import('./jetstream/run.ts')).runJetstream,
        io,
        print,
      )
  }
}

/** A copy of `value` with every password-like field replaced, for `--print-config`. */
function hideSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(hideSecrets)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      /password/i.test(k) && v !== undefined ? '(hidden)' : hideSecrets(v),
    ]),
  )
}

/** The version in package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

/**
 * Run the CLI; returns the process exit code (0 ok, 1 runtime failure, 2 usage or config error).
 */
export async function main(io: CliIo): Promise<number> {
  try {
    const parsed = parseArgv(io.argv)
    if (parsed.version) {
      io.stdoutText.write(`atkafka ${version()}\n`)
      return 0
    }
    if (parsed.help) {
      io.stdoutText.write(helpText(parsed.node, parsed.path))
      return 0
    }
    const command = parsed.node.command
    if (command === undefined) {
      const choices = (parsed.node.children ?? []).map((c) => c.name).join(', ')
      io.stderr.write(
        `atkafka: error: missing command (one of ${choices}); see ${['atkafka', ...parsed.path].join(' ')} --help\n`,
      )
      return 2
    }
    const cli = Object.fromEntries([...parsed.flags].map(([k, v]) => [propertyOf(k), v]))
    await runCommand(command, cli, io)
    return 0
  } catch (err) {
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
