import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  OLD_SPACE_MB,
  OPT_OUT_ENV,
  SEMI_SPACE_MB,
  TUNED_ENV,
  type NodeProcessInfo,
  tunedRelaunch,
} from '../src/node-tuning.ts'
import { spawnAtkafka } from './support/atkafka.ts'

const NODE = '/opt/node/bin/node'

function info(over: Partial<NodeProcessInfo> = {}): NodeProcessInfo {
  return {
    execArgv: [],
    argv: [NODE, '/app/bin/atkafka', 'firehose', 'relay', '--stdout'],
    env: { PATH: '/bin' },
    heapLimitMb: 4144,
    ...over,
  }
}

describe('memory defaults (node re-executed with heap flags)', () => {
  it('adds the heap flags before the script, keeps its arguments and environment', () => {
    const r = tunedRelaunch(NODE, info({ execArgv: ['--enable-source-maps'] }))
    assert.ok(r)
    assert.deepEqual(r.args, [
      NODE,
      `--max-semi-space-size=${SEMI_SPACE_MB}`,
      `--max-old-space-size=${OLD_SPACE_MB}`,
      '--enable-source-maps',
      '/app/bin/atkafka',
      'firehose',
      'relay',
      '--stdout',
    ])
    assert.equal(r.env['PATH'], '/bin')
    assert.equal(r.env[TUNED_ENV], '1')
    assert.equal(r.env['MALLOC_ARENA_MAX'], '2')
  })

  it('never runs twice, and can be turned off', () => {
    assert.equal(tunedRelaunch(NODE, info({ env: { [TUNED_ENV]: '1' } })), undefined)
    assert.equal(tunedRelaunch(NODE, info({ env: { [OPT_OUT_ENV]: 'off' } })), undefined)
  })

  it("the user's own flags and variables win", () => {
    const both = info({
      execArgv: ['--max_semi_space_size=4'],
      env: { NODE_OPTIONS: '--inspect --max-old-space-size=300' },
    })
    assert.equal(tunedRelaunch(NODE, both), undefined)
    const semi = tunedRelaunch(NODE, info({ env: { NODE_OPTIONS: '--max-semi-space-size=8' } }))
    assert.deepEqual(semi?.args.slice(1, 2), [`--max-old-space-size=${OLD_SPACE_MB}`])
    const malloc = tunedRelaunch(NODE, info({ env: { MALLOC_ARENA_MAX: '8' } }))
    assert.equal(malloc?.env['MALLOC_ARENA_MAX'], '8')
  })

  it("never raises Node's own heap limit (e.g. set from a container's memory)", () => {
    const r = tunedRelaunch(NODE, info({ heapLimitMb: 300.7 }))
    assert.ok(r?.args.includes('--max-old-space-size=300'))
  })

  it('the CLI re-executes itself in place: same process id, flags in its command line', async () => {
    const p = await spawnAtkafka([
      'firehose',
      'relay',
      '--relay-host',
      'ws://127.0.0.1:9',
      '--stdout',
      '--cursor-file',
      join(tmpdir(), `atkafka-tuning-${process.pid}.json`),
    ])
    try {
      await p.waitFor(/connecting to relay/)
      const cmdline = (await readFile(`/proc/${p.child.pid}/cmdline`, 'utf8')).split('\0')
      assert.ok(cmdline.includes(`--max-semi-space-size=${SEMI_SPACE_MB}`), cmdline.join(' '))
      assert.ok(
        cmdline.some((a) => a.startsWith('--max-old-space-size=')),
        cmdline.join(' '),
      )
      const environ = (await readFile(`/proc/${p.child.pid}/environ`, 'utf8')).split('\0')
      assert.ok(environ.includes(`${TUNED_ENV}=1`))
    } finally {
      p.child.kill('SIGTERM')
      await p.exited
    }
  })
})
