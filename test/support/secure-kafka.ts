import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type KafkaBroker, runKafkaTool, startKafka } from '../harness/kafka.ts'
import { freePort } from './atkafka.ts'

export type SaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'

export interface SaslUser {
  mechanism: SaslMechanism
  name: string
  password: string
}

export interface SecureKafka {
  broker: KafkaBroker
  /** The PLAINTEXT listener (no auth): for creating topics and reading them back. */
  plaintext: string
  /** The SASL_SSL listener: `127.0.0.1:<port>`. */
  secure: string
  /** PEM of the CA that signed the broker certificate (SAN 127.0.0.1 and localhost). */
  caFile: string
  /** PEM of another CA, which did not sign the broker certificate. */
  otherCaFile: string
  /** Change a SCRAM user's password (kafka-configs); open connections stay authenticated. */
  setScramPassword(mechanism: SaslMechanism, name: string, password: string): Promise<void>
  stop(): Promise<void>
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string }
    throw new Error(
      `openssl ${args[0]} failed (the SASL_SSL broker needs the openssl CLI): ${e.stderr?.toString() ?? e.message}`,
    )
  }
}

function makeCa(dir: string, name: string): { key: string; cert: string } {
  const key = join(dir, `${name}.key`)
  const cert = join(dir, `${name}.pem`)
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  )
  return { key, cert }
}

/**
 * Make a CA and a broker certificate signed by it (openssl), in a PKCS12 keystore the broker
 * reads. Returns the paths and the keystore password.
 */
function makeCertificates(dir: string): {
  caFile: string
  otherCaFile: string
  keystore: string
  storePassword: string
} {
  const ca = makeCa(dir, 'atkafka-test-ca')
  const other = makeCa(dir, 'atkafka-other-ca')
  const key = join(dir, 'broker.key')
  const csr = join(dir, 'broker.csr')
  const cert = join(dir, 'broker.pem')
  const ext = join(dir, 'broker.ext')
  writeFileSync(
    ext,
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n',
  )
  openssl(
    ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=localhost'],
    dir,
  )
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-CAcreateserial',
      '-out',
      cert,
      '-days',
      '2',
      '-extfile',
      ext,
    ],
    dir,
  )
  const storePassword = randomBytes(12).toString('hex')
  const keystore = join(dir, 'broker.p12')
  openssl(
    [
      'pkcs12',
      '-export',
      '-in',
      cert,
      '-inkey',
      key,
      '-certfile',
      ca.cert,
      '-name',
      'broker',
      '-out',
      keystore,
      '-passout',
      `pass:${storePassword}`,
    ],
    dir,
  )
  return { caFile: ca.cert, otherCaFile: other.cert, keystore, storePassword }
}

/**
 * A real broker with a SASL_SSL listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) besides its
 * PLAINTEXT one. SCRAM users are added at `kafka-storage format` time (`--add-scram`), PLAIN
 * users in the listener's JAAS config.
 */
export async function startSecureKafka(users: readonly SaslUser[]): Promise<SecureKafka> {
  const certDir = mkdtempSync(join(tmpdir(), 'atkafka-tls-'))
  try {
    const tls = makeCertificates(certDir)
    const port = await freePort()
    const l = 'listener.name.sasl_ssl'
    const plain = users
      .filter((u) => u.mechanism === 'PLAIN')
      .map((u) => ` user_${u.name}="${u.password}"`)
      .join('')
    const broker = await startKafka({
      extraListeners: [{ name: 'SASL_SSL', port }],
      extraProperties: {
        'sasl.enabled.mechanisms': 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
        [`${l}.sasl.enabled.mechanisms`]: 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
        [`${l}.plain.sasl.jaas.config`]: `org.apache.kafka.common.security.plain.PlainLoginModule required${plain};`,
        [`${l}.scram-sha-256.sasl.jaas.config`]:
          'org.apache.kafka.common.security.scram.ScramLoginModule required;',
        [`${l}.scram-sha-512.sasl.jaas.config`]:
          'org.apache.kafka.common.security.scram.ScramLoginModule required;',
        [`${l}.ssl.keystore.type`]: 'PKCS12',
        [`${l}.ssl.keystore.location`]: tls.keystore,
        [`${l}.ssl.keystore.password`]: tls.storePassword,
        [`${l}.ssl.key.password`]: tls.storePassword,
      },
      formatArgs: users
        .filter((u) => u.mechanism !== 'PLAIN')
        .flatMap((u) => ['--add-scram', `${u.mechanism}=[name=${u.name},password=${u.password}]`]),
    })
    return {
      broker,
      plaintext: broker.bootstrap,
      secure: `127.0.0.1:${port}`,
      caFile: tls.caFile,
      otherCaFile: tls.otherCaFile,
      async setScramPassword(mechanism, name, password) {
        const { code, stdout, stderr } = await runKafkaTool(
          'ConfigCommand',
          [
            '--bootstrap-server',
            broker.bootstrap,
            '--alter',
            '--add-config',
            `${mechanism}=[password=${password}]`,
            '--entity-type',
            'users',
            '--entity-name',
            name,
          ],
          { version: broker.version },
        )
        if (code !== 0) {
          throw new Error(
            `kafka-configs --alter (user ${name}) failed (exit ${code}):\n${stdout}${stderr}`,
          )
        }
      },
      async stop() {
        await broker.stop()
        rmSync(certDir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    rmSync(certDir, { recursive: true, force: true })
    throw err
  }
}
