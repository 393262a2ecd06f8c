import type { AtKafkaEvent, JsonObject, JsonValue, OpAction } from '../events.ts'
import type { CollectionFilter } from '../filter.ts'
import { type BlockProblem, findCarBlocks, verifyBlock } from './car.ts'
import { decodeDagCbor } from './cbor.ts'
import { fastDecodeRecordJson } from './fast-cbor.ts'
import type { FirehoseMessage, CommitMessage } from './frame.ts'
import { ipldToJson } from './ipld-json.ts'

/** Why an operation was not turned into an event: the `reason` label of the dropped metric. */
export type DropReason = BlockProblem | 'invalid-record' | 'invalid-op' | 'invalid-car'

export interface Dropped {
  reason: DropReason
  did: string
  seq: number
  path?: string
  detail?: string
}

export interface SplitResult {
  events: AtKafkaEvent[]
  /** Operations that could not be turned into events (each needs a metric and a log line). */
  dropped: Dropped[]
  /** Operations skipped by the collection filter. */
  filtered: number
}

const ACTIONS: ReadonlySet<string> = new Set(['create', 'update', 'delete'])

function splitCommit(msg: CommitMessage, keep: CollectionFilter): SplitResult {
  const events: AtKafkaEvent[] = []
  const dropped: Dropped[] = []
  let filtered = 0
  const base = { did: msg.repo, seq: msg.seq }

  type Pending = {
    action: OpAction
    collection: string
    rkey: string
    path: string
    /** Index of its CID in `wanted`. */
    block: number
    cid: string
  }
  const pending: Pending[] = []
  const wanted: Uint8Array[] = []
  for (const op of msg.ops) {
    const slash = op.path.indexOf('/')
    if (!ACTIONS.has(op.action) || slash <= 0 || slash === op.path.length - 1) {
      dropped.push({ ...base, reason: 'invalid-op', path: op.path, detail: `action ${op.action}` })
      continue
    }
    const collection = op.path.slice(0, slash)
    if (!keep(collection)) {
      filtered++
      continue
    }
    const action = op.action as OpAction
    const p: Pending = {
      action,
      collection,
      rkey: op.path.slice(slash + 1),
      path: op.path,
      block: -1,
      cid: '',
    }
    if (action !== 'delete') {
      if (op.cid === null) {
        dropped.push({
          ...base,
          reason: 'invalid-op',
          path: op.path,
          detail: `${action} without cid`,
        })
        continue
      }
      p.block = wanted.length
      p.cid = op.cid.toString()
      wanted.push(op.cid.bytes)
    }
    pending.push(p)
  }

  let blocks: Array<Uint8Array | undefined> = []
  let carError: string | undefined
  try {
    blocks = findCarBlocks(msg.blocks, wanted)
  } catch (err) {
    // A malformed CAR loses every record op of the commit; deletes still go out.
    carError = String(err)
  }

  for (const p of pending) {
    const uri = `at://${msg.repo}/${p.path}`
    if (p.action === 'delete') {
      events.push({
        did: msg.repo,
        timestamp: msg.time,
        eventMetadata: null,
        operation: {
          action: 'delete',
          collection: p.collection,
          rkey: p.rkey,
          uri,
          cid: '',
          path: p.path,
        },
      })
      continue
    }
    const data = blocks[p.block]
    if (data === undefined) {
      const reason = carError === undefined ? 'missing-block' : 'invalid-car'
      dropped.push({ ...base, reason, path: p.path, detail: carError ?? p.cid })
      continue
    }
    const problem = verifyBlock(wanted[p.block]!, data)
    if (problem !== undefined) {
      dropped.push({ ...base, reason: problem, path: p.path, detail: p.cid })
      continue
    }
    let record: JsonObject
    try {
      const value = recordJson(data)
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new TypeError('record is not a map')
      }
      record = value
    } catch (err) {
      dropped.push({ ...base, reason: 'invalid-record', path: p.path, detail: String(err) })
      continue
    }
    events.push({
      did: msg.repo,
      timestamp: msg.time,
      eventMetadata: null,
      operation: {
        action: p.action,
        collection: p.collection,
        rkey: p.rkey,
        uri,
        cid: p.cid,
        path: p.path,
        record,
      },
    })
  }
  return { events, dropped, filtered }
}

/** A record block as lexicon JSON: the single-pass decoder, or the reference path when it declines. */
function recordJson(data: Uint8Array): JsonValue {
  try {
    return fastDecodeRecordJson(data)
  } catch {
    return ipldToJson(decodeDagCbor(data))
  }
}

const NONE: SplitResult = Object.freeze({ events: [], dropped: [], filtered: 0 }) as SplitResult

/**
 * Turn one firehose message into the events atkafka produces: one per record operation of a
 * commit, one for each identity, account, sync and info message, none for unknown types.
 * Pure: the caller reports `dropped` and `filtered`.
 */
export function splitMessage(msg: FirehoseMessage, keep: CollectionFilter): SplitResult {
  switch (msg.type) {
    case '#commit':
      return splitCommit(msg, keep)
    case '#identity':
      return one({
        did: msg.did,
        timestamp: msg.time,
        eventMetadata: null,
        identity: { seq: msg.seq, handle: msg.handle ?? '' },
      })
    case '#account': {
      const account: { active: boolean; seq: number; status?: string } = {
        active: msg.active,
        seq: msg.seq,
      }
      if (msg.status !== undefined) account.status = msg.status
      return one({ did: msg.did, timestamp: msg.time, eventMetadata: null, account })
    }
    case '#sync':
      return one({
        did: msg.did,
        timestamp: msg.time,
        eventMetadata: null,
        sync: { seq: msg.seq, rev: msg.rev },
      })
    case '#info': {
      const info: { name: string; message?: string } = { name: msg.name }
      if (msg.message !== undefined) info.message = msg.message
      return one({ did: '', timestamp: '', eventMetadata: null, info })
    }
    case 'unknown':
      return NONE
  }
}

function one(event: AtKafkaEvent): SplitResult {
  return { events: [event], dropped: [], filtered: 0 }
}
