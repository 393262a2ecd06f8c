// The full local network (@atproto/dev-env TestNetwork): PLC, PDS, AppView (bsky + bsync) and
// Ozone, on a throwaway PostgreSQL (test/harness/postgres.ts) unless one is passed in.
//
// Ozone's service account is the PDS account `mod-authority.test` / `hunter2`; its DID is the
// Ozone DID and it is an Ozone admin, so an agent logged into the PDS as that account can call
// `agent.withProxy('atproto_labeler', ozoneDid).tools.ozone.*` through the PDS.
import { TestNetwork } from '@atproto/dev-env'
import { firehoseUrlOf } from './pds.ts'
import { startPostgres } from './postgres.ts'
import type { PostgresHandle } from './postgres.ts'

export const OZONE_ADMIN_HANDLE = 'mod-authority.test'
export const OZONE_ADMIN_PASSWORD = 'hunter2'

export interface FullNetworkOptions {
  /** use this database instead of starting a private PostgreSQL (DB_POSTGRES_URL is not read) */
  dbPostgresUrl?: string
  /** schema suffix (letters and `_`); default: unique per call */
  dbPostgresSchema?: string
}

export interface FullNetworkHandle {
  network: TestNetwork
  /** http://localhost:<port> */
  pdsUrl: string
  plcUrl: string
  appviewUrl: string
  ozoneUrl: string
  /** Ozone's service DID (= the DID of mod-authority.test, an Ozone admin) */
  ozoneDid: string
  /** ws://localhost:<port>/xrpc/com.atproto.sync.subscribeRepos of the PDS */
  firehoseUrl: string
  /** postgresql://… the network runs on */
  dbPostgresUrl: string
  close(): Promise<void>
}

let schemaCounter = 0

/** A schema suffix made of lowercase letters and `_` only, unique per call and per process. */
export function uniqueSchemaName(prefix = 'atk'): string {
  const letters = (n: number) => {
    let out = ''
    let v = n
    do {
      out = String.fromCharCode(97 + (v % 26)) + out
      v = Math.floor(v / 26)
    } while (v > 0)
    return out
  }
  schemaCounter += 1
  const rand = Array.from({ length: 6 }, () =>
    String.fromCharCode(97 + Math.floor(Math.random() * 26)),
  ).join('')
  return `${prefix}_${letters(process.pid)}_${letters(schemaCounter)}_${rand}`
}

export async function startFullNetwork(opts: FullNetworkOptions = {}): Promise<FullNetworkHandle> {
  const schema = opts.dbPostgresSchema ?? uniqueSchemaName()
  if (!/^[A-Za-z_]+$/.test(schema)) {
    throw new Error(`dbPostgresSchema must contain only letters and '_': ${schema}`)
  }

  let pg: PostgresHandle | undefined
  const dbPostgresUrl = opts.dbPostgresUrl ?? (pg = await startPostgres()).url

  // TestNetwork.create asserts that REDIS_HOST is set; nothing ever connects to it.
  const hadRedis = Object.prototype.hasOwnProperty.call(process.env, 'REDIS_HOST')
  if (!hadRedis) process.env.REDIS_HOST = '127.0.0.1:1'
  let network: TestNetwork
  try {
    network = await TestNetwork.create({
      dbPostgresUrl,
      dbPostgresSchema: schema,
      pds: { hostname: 'localhost' },
    })
  } catch (err) {
    await pg?.stop()
    throw err
  } finally {
    if (!hadRedis) delete process.env.REDIS_HOST
  }

  let closed = false
  return {
    network,
    pdsUrl: network.pds.url,
    plcUrl: network.plc.url,
    appviewUrl: network.bsky.url,
    ozoneUrl: network.ozone.url,
    ozoneDid: network.ozone.ctx.cfg.service.did,
    firehoseUrl: firehoseUrlOf(network.pds.url),
    dbPostgresUrl,
    async close() {
      if (closed) return
      closed = true
      try {
        await network.close()
      } finally {
        await pg?.stop()
      }
    },
  }
}
