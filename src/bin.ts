import { cliMain } from './cli.ts'

// KafkaJS 2.2.4 passes negative delays to setTimeout; Node 24 warns about it, harmlessly.
// Replace the default warning printer with one that leaves that warning out.
process.removeAllListeners('warning')
process.on('warning', (warning) => {
  if (warning.name !== 'TimeoutNegativeWarning') {
    process.stderr.write(`(node:${process.pid}) ${warning.name}: ${warning.message}\n`)
  }
})

await cliMain()
