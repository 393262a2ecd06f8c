// The decode stage alone, in its own process: frame decode → split into events → JSON, over the
// corpus again and again for a fixed time, one thread. Prints one JSON line with the counts.
// Only the frames in the corpus's first --input-mb MB are held in memory and used.
//
//   node bench/decode-stage.ts (--real | --corpus <dir>) [--seconds 10] [--input-mb 48]

import { parseArgs } from 'node:util'
import { plainFormatter } from '../src/format.ts'
import { decodeFrame } from '../src/firehose/frame.ts'
import { splitMessage } from '../src/firehose/split.ts'
import { REAL_CAPTURE_DIR, readFramesFile } from './corpus/store.ts'
import { ownPeakRssMb } from './proc-stats.ts'

const { values } = parseArgs({
  options: {
    real: { type: 'boolean', default: false },
    corpus: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    'input-mb': { type: 'string', default: '48' },
  },
})

const file =
  values.corpus !== undefined ? `${values.corpus}/frames.bin` : `${REAL_CAPTURE_DIR}/frames.bin`
const frames = readFramesFile(file, Number(values['input-mb']) * 2 ** 20)
const seconds = Number(values.seconds)
const keep = () => true
const format = plainFormatter()

function pass(): { events: number; bytes: number; outBytes: number } {
  let events = 0
  let bytes = 0
  let outBytes = 0
  for (const frame of frames) {
    bytes += frame.length
    const msg = decodeFrame(frame)
    if (msg.type === 'error') continue
    for (const event of splitMessage(msg, keep).events) {
      outBytes += format(event).length
      events++
    }
  }
  return { events, bytes, outBytes }
}

// Warm up (JIT) for a tenth of the time, then measure.
const warmUntil = performance.now() + seconds * 100
while (performance.now() < warmUntil) pass()
process.stdout.write(JSON.stringify({ phase: 'measuring' }) + '\n')

let framesDone = 0
let events = 0
let bytes = 0
let outBytes = 0
const cpu0 = process.cpuUsage()
const t0 = performance.now()
const until = t0 + seconds * 1000
while (performance.now() < until) {
  const r = pass()
  framesDone += frames.length
  events += r.events
  bytes += r.bytes
  outBytes += r.outBytes
}
const elapsed = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
process.stdout.write(
  JSON.stringify({
    frames: framesDone,
    events,
    bytes,
    outBytes,
    seconds: elapsed,
    cpuPercent: (cpu.user + cpu.system) / 1e4 / elapsed,
    peakRssMb: ownPeakRssMb(),
  }) + '\n',
)
