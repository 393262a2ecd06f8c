import { cliMain } from './cli.ts'

await cliMain()
