import type { AtKafkaEvent, JsonObject, OpAction } from '../events.ts'

/** A Jetstream (v1, `/subscribe`) event turned into the event relay mode would produce. */
export interface JetstreamEvent {
  /** Jetstream's `time_us`: when it saw the event (its cursor), microseconds since 1970. */
  timeUs: number
  /** Names the event across a replay, for dropping what was already produced. */
  key: string
  event: AtKafkaEvent
}

export type JetstreamProblemReason =
  'invalid-json' | 'invalid-event' | 'unknown-kind' | 'invalid-op' | 'invalid-record'

export type JetstreamParseResult =
  | ({ ok: true } & JetstreamEvent)
  | {
      ok: false
      reason: JetstreamProblemReason
      detail: string
      kind?: string
      did?: string
      timeUs?: number
    }

const ACTIONS: ReadonlySet<string> = new Set(['create', 'update', 'delete'])

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Jetstream's `time_us` as relay mode's `timestamp` (RFC 3339, milliseconds, UTC). */
export function timestampOf(timeUs: number): string {
  return new Date(Math.floor(timeUs / 1000)).toISOString()
}

/**
 * Parse one text frame of Jetstream's `/subscribe` and build the event relay mode produces for
 * the same activity: `operation` (action, collection, rkey, uri, cid, path, record), `identity`
 * or `account`. Pure; untrusted input is checked here once.
 */
export function parseJetstreamEvent(text: string): JetstreamParseResult {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    return { ok: false, reason: 'invalid-json', detail: String(err) }
  }
  if (!isObject(raw)) return { ok: false, reason: 'invalid-json', detail: 'not an object' }
  const { did, time_us: timeUs, kind } = raw
  if (typeof did !== 'string' || !did.startsWith('did:')) {
    return { ok: false, reason: 'invalid-event', detail: 'no valid "did"' }
  }
  if (typeof timeUs !== 'number' || !Number.isSafeInteger(timeUs) || timeUs <= 0) {
    return { ok: false, reason: 'invalid-event', detail: 'no valid "time_us"', did }
  }
  const bad = (reason: JetstreamProblemReason, detail: string) =>
    ({ ok: false, reason, detail, did, timeUs, kind: String(kind) }) as const
  switch (kind) {
    case 'commit':
      return commitEvent(did, timeUs, raw['commit'], bad)
    case 'identity': {
      const body = raw['identity']
      if (
        !isObject(body) ||
        !Number.isSafeInteger(body['seq']) ||
        typeof body['time'] !== 'string'
      ) {
        return bad('invalid-event', 'identity without seq and time')
      }
      const handle = body['handle']
      if (handle !== undefined && typeof handle !== 'string') {
        return bad('invalid-event', 'identity handle is not a string')
      }
      const seq = body['seq'] as number
      return {
        ok: true,
        timeUs,
        key: `i ${did} ${seq}`,
        event: {
          did,
          timestamp: body['time'],
          eventMetadata: null,
          identity: { seq, handle: handle ?? '' },
        },
      }
    }
    case 'account': {
      const body = raw['account']
      if (
        !isObject(body) ||
        typeof body['active'] !== 'boolean' ||
        !Number.isSafeInteger(body['seq']) ||
        typeof body['time'] !== 'string'
      ) {
        return bad('invalid-event', 'account without active, seq and time')
      }
      const status = body['status']
      if (status !== undefined && typeof status !== 'string') {
        return bad('invalid-event', 'account status is not a string')
      }
      const seq = body['seq'] as number
      const account: { active: boolean; seq: number; status?: string } = {
        active: body['active'],
        seq,
      }
      if (status !== undefined && status !== '') account.status = status
      return {
        ok: true,
        timeUs,
        key: `a ${did} ${seq}`,
        event: { did, timestamp: body['time'], eventMetadata: null, account },
      }
    }
    default:
      return bad('unknown-kind', `kind ${JSON.stringify(kind)}`)
  }
}

function commitEvent(
  did: string,
  timeUs: number,
  body: unknown,
  bad: (reason: JetstreamProblemReason, detail: string) => JetstreamParseResult,
): JetstreamParseResult {
  if (!isObject(body)) return bad('invalid-event', 'commit without a "commit" object')
  const { operation, collection, rkey, rev, cid, record } = body
  if (
    typeof operation !== 'string' ||
    !ACTIONS.has(operation) ||
    typeof collection !== 'string' ||
    collection === '' ||
    collection.includes('/') ||
    typeof rkey !== 'string' ||
    rkey === '' ||
    rkey.includes('/') ||
    typeof rev !== 'string'
  ) {
    return bad('invalid-op', 'commit without a valid operation, collection, rkey and rev')
  }
  const action = operation as OpAction
  const path = `${collection}/${rkey}`
  const key = `c ${did} ${rev} ${path}`
  const uri = `at://${did}/${path}`
  const timestamp = timestampOf(timeUs)
  if (action === 'delete') {
    return {
      ok: true,
      timeUs,
      key,
      event: {
        did,
        timestamp,
        eventMetadata: null,
        operation: { action, collection, rkey, uri, cid: '', path },
      },
    }
  }
  if (typeof cid !== 'string' || cid === '') return bad('invalid-op', `${action} without cid`)
  if (!isObject(record)) return bad('invalid-record', `${action} without a record object`)
  return {
    ok: true,
    timeUs,
    key,
    event: {
      did,
      timestamp,
      eventMetadata: null,
      operation: { action, collection, rkey, uri, cid, path, record: record as JsonObject },
    },
  }
}
