import { tunedCommand } from './node-tuning.ts'

// Re-execute once with the memory defaults (same process id) before loading anything else;
// where that is not possible (no execve, e.g. Windows) run as started.
const execve = process.execve?.bind(process)
const relaunch =
  execve === undefined ? undefined : tunedCommand(process.argv, process.execArgv, process.env)
if (relaunch !== undefined) {
  try {
    execve!(process.execPath, relaunch.args, relaunch.env)
  } catch {
    // Run untuned rather than not at all.
  }
}

// KafkaJS 2.2.4 passes negative delays to setTimeout; Node 24 warns about it, harmlessly.
// Replace the default warning printer with one that leaves that warning out.
process.removeAllListeners('warning')
process.on('warning', (warning) => {
  if (warning.name !== 'TimeoutNegativeWarning') {
    process.stderr.write(`(node:${process.pid}) ${warning.name}: ${warning.message}\n`)
  }
})

const { cliMain } = await import('./cli.ts')
await cliMain()

// Last resort, once everything has stopped: a Kafka client can keep sockets and timers alive
// after it was told to close (a broker that stopped answering). Nothing is left to do then, so
// such handles must not keep the process running.
const EXIT_GRACE_MS = 2000
setTimeout(() => {
  process.stderr.write(
    `atkafka: still ${process.getActiveResourcesInfo().length} open handles ${EXIT_GRACE_MS} ms after stopping; exiting\n`,
  )
  process.exit()
}, EXIT_GRACE_MS).unref()
