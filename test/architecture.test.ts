// The shape of src/: each mode is a folder of its own (an adapter of the Source port), no mode
// folder imports another, and no module imports itself through a circle.

import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, it } from 'node:test'

const SRC = resolve(import.meta.dirname, '..', 'src')
/** Folders holding one source each. */
const MODES = ['relay', 'labels', 'tap', 'ozone', 'jetstream']

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(SRC, join(e.parentPath, e.name)))
    .sort()
}

/** Relative imports of a module (static, type-only, re-exports and `import()`), as src paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(SRC, file), 'utf8')
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"]([^'"]+)['"]/gms),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]!)
  return specs
    .filter((s) => s.startsWith('.'))
    .map((s) => relative(SRC, resolve(SRC, dirname(file), s)))
}

const graph = new Map(sourceFiles(SRC).map((f) => [f, importsOf(f)]))
const modeOf = (file: string) => MODES.find((m) => file.startsWith(m + '/'))

describe('src layout', () => {
  it('sees the imports of every module', () => {
    assert.ok(graph.size > 50, `${graph.size} modules`)
    assert.ok(graph.get('relay/run.ts')!.includes('source/runner.ts'))
    assert.ok(graph.get('cli.ts')!.includes('relay/run.ts'), 'dynamic imports count too')
    for (const [file, deps] of graph) {
      for (const d of deps) assert.ok(graph.has(d), `${file} imports ${d}, which does not exist`)
    }
  })

  it('no mode folder imports another mode folder', () => {
    const crossing: string[] = []
    for (const [file, deps] of graph) {
      const mode = modeOf(file)
      if (mode === undefined) continue
      for (const d of deps) {
        const other = modeOf(d)
        if (other !== undefined && other !== mode) crossing.push(`${file} → ${d}`)
      }
    }
    assert.deepEqual(crossing, [])
  })

  it('has no import circle', () => {
    const circles: string[] = []
    const state = new Map<string, 'open' | 'done'>()
    const path: string[] = []
    const visit = (file: string) => {
      state.set(file, 'open')
      path.push(file)
      for (const d of graph.get(file) ?? []) {
        if (state.get(d) === 'open') circles.push([...path.slice(path.indexOf(d)), d].join(' → '))
        else if (!state.has(d)) visit(d)
      }
      path.pop()
      state.set(file, 'done')
    }
    for (const file of graph.keys()) if (!state.has(file)) visit(file)
    assert.deepEqual(circles, [])
  })
})
