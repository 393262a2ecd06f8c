// What atkafka says when Kafka is not what the configuration expects: SASL against a listener that
// speaks none, and a "broker" that accepts connections and never answers.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { type Socket, createServer } from 'node:net'
import { describe, it } from 'node:test'
import { KAFKA_CLIENTS } from '../src/sink/clients.ts'
import { spawnAtkafka } from './support/atkafka.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS

interface LogLine {
  time: string
  level: number
  msg: string
}

function logLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine)
}

describe('Kafka error texts', () => {
  for (const client of KAFKA_CLIENTS) {
    it(`${client}: SASL against a plaintext listener says the listener may not speak SASL or TLS`, async () => {
      assert.ok(
        bootstrap,
        'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)',
      )
      const p = await spawnAtkafka([
        ...['firehose', 'relay', '--relay-host', 'ws://127.0.0.1:9', '--no-event-metadata'],
        ...['--bootstrap-servers', bootstrap, '--output-topic', 'sasl-on-plaintext'],
        ...['--kafka-client', client, '--kafka-sasl-mechanism', 'scram-sha-256'],
        ...['--kafka-sasl-username', 'someone', '--kafka-sasl-password', 'not-a-secret'],
      ])
      try {
        assert.equal(await p.exited, 1)
      } finally {
        p.child.kill('SIGKILL')
      }
      const where = client === 'platformatic' ? ` at ${bootstrap.replaceAll('.', '\\.')}` : ''
      assert.match(
        p.stderr(),
        new RegExp(
          `^atkafka: KafkaFatalError: Kafka${where} did not accept a SASL handshake \\(ILLEGAL_SASL_STATE\\): the listener may not speak SASL, or may need TLS; .*--kafka-ssl\\n$`,
        ),
      )
      assert.doesNotMatch(p.stderr(), /credentials/)
    })
  }

  it('a broker that accepts connections and never answers: "waiting for Kafka at host:port" within 3 s', async (t) => {
    const sockets = new Set<Socket>()
    const silent = createServer((s) => {
      sockets.add(s)
      s.on('error', () => {})
    })
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    t.after(() => {
      for (const s of sockets) s.destroy()
      silent.close()
    })
    const where = `127.0.0.1:${(silent.address() as { port: number }).port}`
    const p = await spawnAtkafka([
      ...['firehose', 'relay', '--relay-host', 'ws://127.0.0.1:9', '--no-event-metadata'],
      ...['--bootstrap-servers', where, '--output-topic', 'silent'],
    ])
    try {
      await p.waitFor(new RegExp(`waiting for Kafka at ${where.replaceAll('.', '\\.')}`), 15000)
      assert.ok(sockets.size > 0, 'atkafka connected to the silent server')
    } finally {
      p.child.kill('SIGKILL')
    }
    const lines = logLines(p.stdout())
    const started = lines.find((l) => l.msg === 'metrics server listening')
    const waiting = lines.find((l) => l.msg.startsWith(`waiting for Kafka at ${where}`))
    assert.ok(started && waiting, p.stdout())
    const seconds = (Date.parse(waiting.time) - Date.parse(started.time)) / 1000
    assert.ok(seconds <= 3, `the line came ${seconds} s after start`)
  })
})
