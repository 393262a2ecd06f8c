// Summarise a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- --cpu-prof`): self time by
// function and by module.
//
//   node bench/profile-summary.ts <file.cpuprofile> [--top 30]

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' } },
})
const top = Number(values.top)

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const byFunction = new Map<string, number>()
  const byModule = new Map<string, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    const frame = byId.get(id)!.callFrame
    const where = moduleOf(frame.url)
    const fn = `${frame.functionName || '(anonymous)'} ${where}:${frame.lineNumber + 1}`
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt)
    byModule.set(where, (byModule.get(where) ?? 0) + dt)
    total += dt
  })
  console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`)
  print('self time by function', byFunction, total)
  print('self time by module', byModule, total)
}

function print(title: string, map: Map<string, number>, total: number): void {
  console.log(`\n${title}:`)
  for (const [k, t] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * t) / total).toFixed(1).padStart(6)}%  ${k}`)
  }
}

/** `node_modules/<pkg>/…/file` → `<pkg>/file`; project files relative to the repository. */
function moduleOf(url: string): string {
  if (url === '') return '(native)'
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    const pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
    return `${pkg}/${rest.at(-1)}`
  }
  if (url.startsWith('node:')) return url
  const src = url.search(/\/(src|bench|test)\//)
  return src >= 0 ? url.slice(src + 1) : url
}
