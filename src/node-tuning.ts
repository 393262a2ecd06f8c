/**
 * Memory defaults for the Node process. V8 sizes its heap from the machine's memory: on a large
 * machine the young generation alone grows to 128 MB and the old generation is collected late,
 * so a service that allocates fast (a firehose) sits at 400+ MB resident while its live heap is
 * about 40 MB. These flags bound that; they can only be given when Node starts, so the CLI
 * re-executes itself once (same process id, `process.execve`) with them added.
 *
 * Anything the user set wins: a flag already in NODE_OPTIONS or on the node command line is not
 * added, nor an environment variable already set. `ATKAFKA_NODE_TUNING=off` turns this off.
 */

import { getHeapStatistics } from 'node:v8'

/** Young generation: two semi-spaces of at most this many MB (V8's default here is 64). */
export const SEMI_SPACE_MB = 16
/** Old generation limit in MB, unless Node's own limit (e.g. from a container's memory) is lower. */
export const OLD_SPACE_MB = 1024
/** Marks the re-executed process, so it never loops. */
export const TUNED_ENV = 'ATKAFKA_NODE_TUNED'
export const OPT_OUT_ENV = 'ATKAFKA_NODE_TUNING'

export interface NodeProcessInfo {
  execArgv: readonly string[]
  /** process.argv: node, the script, then the CLI's arguments. */
  argv: readonly string[]
  env: Readonly<Record<string, string | undefined>>
  /** V8's heap limit of this process, in MB. */
  heapLimitMb: number
}

export interface Relaunch {
  /** argv for execve, starting with the node binary. */
  args: string[]
  env: Record<string, string>
}

function hasFlag(flag: string, info: NodeProcessInfo): boolean {
  // V8 takes either spelling: --max-semi-space-size or --max_semi_space_size.
  const given = (arg: string) => {
    const a = arg.replaceAll('_', '-')
    return a === flag || a.startsWith(`${flag}=`)
  }
  return info.execArgv.some(given) || (info.env['NODE_OPTIONS'] ?? '').split(/\s+/).some(given)
}

/** The command to re-execute with the memory defaults, or undefined when nothing is to change. */
export function tunedRelaunch(execPath: string, info: NodeProcessInfo): Relaunch | undefined {
  const { env } = info
  if (env[TUNED_ENV] !== undefined || env[OPT_OUT_ENV] === 'off') return undefined
  const flags: string[] = []
  if (!hasFlag('--max-semi-space-size', info)) flags.push(`--max-semi-space-size=${SEMI_SPACE_MB}`)
  if (!hasFlag('--max-old-space-size', info)) {
    flags.push(`--max-old-space-size=${Math.min(OLD_SPACE_MB, Math.floor(info.heapLimitMb))}`)
  }
  if (flags.length === 0) return undefined
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v
  // glibc: fewer malloc arenas and a fixed mmap threshold, so large network and encoding
  // buffers go back to the system when freed instead of fragmenting the heap. Ignored elsewhere.
  out['MALLOC_ARENA_MAX'] ??= '2'
  out['MALLOC_MMAP_THRESHOLD_'] ??= '131072'
  out[TUNED_ENV] = '1'
  return { args: [execPath, ...flags, ...info.execArgv, ...info.argv.slice(1)], env: out }
}

/** {@link tunedRelaunch} for a script run by this Node binary, with this process's heap limit. */
export function tunedCommand(
  argv: readonly string[],
  execArgv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Relaunch | undefined {
  return tunedRelaunch(process.execPath, {
    execArgv,
    argv,
    env,
    heapLimitMb: getHeapStatistics().heap_size_limit / 2 ** 20,
  })
}
