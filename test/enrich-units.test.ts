// The pure parts of the enrichment stage: service patterns, config rules, the token bucket,
// the circuit breaker, the per-key queue and the metadata object.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Values, firehoseConfig } from '../src/config/config.ts'
import { resolveOptions } from '../src/config/resolve.ts'
import { accountAgeSeconds, creationTimeOf } from '../src/enrich/audit.ts'
import { Breaker } from '../src/enrich/breaker.ts'
import { buildMetadata } from '../src/enrich/enricher.ts'
import { declaredHandle, parseDidDocument } from '../src/enrich/identity.ts'
import { KeyedQueue } from '../src/enrich/keyed-queue.ts'
import { isEstablished } from '../src/enrich/profile.ts'
import { TokenBucket } from '../src/enrich/rate-limit.ts'
import { compileServiceFilter, normalizeServicePattern } from '../src/enrich/service-filter.ts'
import { ConfigError } from '../src/errors.ts'

function config(cli: Record<string, string | boolean>, env: Record<string, string> = {}) {
  return firehoseConfig(new Values(resolveOptions('relay', { stdout: true, ...cli }, env)))
}

describe('service filters', () => {
  it('normalise patterns as at-kafka (strip *. and leading dots), plus URLs and ports', () => {
    assert.equal(normalizeServicePattern('*.bsky.network'), 'bsky.network')
    assert.equal(normalizeServicePattern('.bsky.network'), 'bsky.network')
    assert.equal(normalizeServicePattern(' Blacksky.App '), 'blacksky.app')
    assert.equal(normalizeServicePattern('https://pds.example.com:443/'), 'pds.example.com')
    assert.equal(normalizeServicePattern('localhost:2583'), 'localhost')
  })

  it('match a host equal to a pattern or below it, never a mere suffix', () => {
    const keep = compileServiceFilter({ watched: ['*.bsky.network', 'blacksky.app'], ignored: [] })!
    assert.equal(keep('morel.us-east.host.bsky.network'), true)
    assert.equal(keep('bsky.network'), true)
    assert.equal(keep('blacksky.app'), true)
    assert.equal(keep('MOREL.US-EAST.HOST.BSKY.NETWORK'), true)
    assert.equal(keep('notbsky.network'), false)
    assert.equal(keep('bsky.network.evil.com'), false)
    assert.equal(keep('pds.blacksky.app.example'), false)
    assert.equal(keep(''), true, 'no PDS in the DID document: kept')
    const drop = compileServiceFilter({ watched: [], ignored: ['*.bsky.network'] })!
    assert.equal(drop('morel.us-east.host.bsky.network'), false)
    assert.equal(drop('pds.example.com'), true)
    assert.equal(compileServiceFilter({ watched: [], ignored: [] }), undefined)
  })
})

describe('enrichment config', () => {
  it('is on by default with the PLC of at-kafka and defaults; --no-event-metadata turns it off', () => {
    const e = config({}).enrich!
    assert.equal(e.plcHost, 'https://plc.directory')
    assert.equal(
      config({ plcHost: 'http://localhost:2582/' }).enrich!.plcHost,
      'http://localhost:2582',
    )
    assert.equal(config({ eventMetadata: false }).enrich, undefined)
    assert.equal(config({}, { ATKAFKA_EVENT_METADATA: 'false' }).enrich, undefined)
    assert.equal(
      config({ eventMetadata: true }, { ATKAFKA_EVENT_METADATA: 'false' }).enrich!.plcHost,
      'https://plc.directory',
    )
    assert.equal(e.apiHost, undefined)
    assert.equal(e.verifyHandles, true)
    assert.equal(e.timeoutMs, 5000)
    assert.deepEqual(e.identityCache, { max: 100000, ttlMs: 48 * 3600 * 1000 })
    assert.deepEqual(e.auditCache, { max: 100000, ttlMs: 3600 * 1000 })
    assert.deepEqual(e.profileCache, { max: 100000, ttlMs: 600 * 1000 })
    assert.equal(e.plcRatePerSec, 200)
    assert.equal(e.apiRatePerSec, 200)
  })

  it('reads the environment', () => {
    const e = config(
      {},
      {
        ATKAFKA_PLC_HOST: 'http://localhost:2582',
        ATKAFKA_API_HOST: 'https://public.api.bsky.app',
        ATKAFKA_IGNORED_SERVICES: '*.bsky.network, blacksky.app',
        ATKAFKA_SKIP_HANDLE_VERIFICATION: 'true',
        ATKAFKA_PROFILE_CACHE_TTL: '30s',
      },
    ).enrich!
    assert.equal(e.apiHost, 'https://public.api.bsky.app')
    assert.deepEqual(e.ignoredServices, ['bsky.network', 'blacksky.app'])
    assert.equal(e.verifyHandles, false)
    assert.equal(e.profileCache.ttlMs, 30000)
  })

  it('rejects both service lists, either or --api-host without event metadata, and malformed patterns', () => {
    assert.throws(
      () => config({ plcHost: 'http://x', watchedServices: 'a', ignoredServices: 'b' }),
      (err: Error) => err instanceof ConfigError && /cannot be used together/.test(err.message),
    )
    assert.throws(
      () => config({ eventMetadata: false, watchedServices: '*.bsky.network' }),
      (err: Error) => err instanceof ConfigError && /need event metadata/.test(err.message),
    )
    assert.throws(
      () =>
        config({}, { ATKAFKA_EVENT_METADATA: 'false', ATKAFKA_IGNORED_SERVICES: 'blacksky.app' }),
      (err: Error) => err instanceof ConfigError && /need event metadata/.test(err.message),
    )
    assert.throws(
      () => config({ eventMetadata: false, apiHost: 'https://public.api.bsky.app' }),
      (err: Error) => err instanceof ConfigError && /needs event metadata/.test(err.message),
    )
    for (const bad of ['bsky*', '*.', '*.bsky*.network', 'a,,b', 'exa mple.com']) {
      assert.throws(
        () => config({ watchedServices: bad }),
        (err: Error) => err instanceof ConfigError && /--watched-services/.test(err.message),
        bad,
      )
    }
    assert.deepEqual(config({ watchedServices: '*' }).enrich!.watchedServices, ['*'])
    assert.equal(compileServiceFilter({ watched: ['*'], ignored: [] })!('any.host'), true)
    assert.throws(() => config({ plcHost: 'ftp://x' }), ConfigError)
    assert.throws(() => config({ plcHost: 'http://x', lookupTimeout: 'soon' }), ConfigError)
  })
})

describe('token bucket', () => {
  it('allows a burst, then one token per 1/rate, and refuses waits beyond the limit', () => {
    let now = 0
    const b = new TokenBucket({ ratePerSec: 200, burst: 100, now: () => now })
    for (let i = 0; i < 100; i++) assert.equal(b.reserve(0), 0)
    assert.equal(b.reserve(0), undefined, 'empty, and no wait allowed')
    assert.equal(b.reserve(10), 5, 'next token in 5 ms')
    assert.equal(b.reserve(10), 10)
    assert.equal(b.reserve(10), undefined, 'would wait 15 ms')
    now += 1000
    assert.equal(b.reserve(0), 0, 'refilled')
  })
})

describe('circuit breaker', () => {
  it('opens after the threshold, lets one probe through after the cooldown', () => {
    let now = 0
    const b = new Breaker({ threshold: 3, cooldownMs: 1000, now: () => now })
    for (let i = 0; i < 3; i++) {
      assert.equal(b.allow(), true)
      b.failure()
    }
    assert.equal(b.allow(), false)
    now += 1000
    assert.equal(b.allow(), true, 'probe')
    assert.equal(b.allow(), false, 'one probe at a time')
    b.failure()
    assert.equal(b.allow(), false, 'probe failed: open again')
    now += 1000
    assert.equal(b.allow(), true)
    b.success()
    assert.equal(b.allow(), true)
    assert.equal(b.allow(), true)
  })
})

describe('keyed queue', () => {
  it('keeps each key in order, runs keys concurrently within the bound, batches what waits', async () => {
    const log: string[] = []
    let running = 0
    let maxRunning = 0
    const releases: Array<() => void> = []
    const q = new KeyedQueue<string>({
      concurrency: 2,
      maxBatch: 3,
      startsBatch: (item) => item.endsWith('!'),
      run: async (key, items) => {
        running++
        maxRunning = Math.max(maxRunning, running)
        await new Promise<void>((r) => releases.push(r))
        log.push(`${key}:${items.join(',')}`)
        running--
      },
      onError: (err) => assert.fail(String(err)),
    })
    for (const [k, v] of [
      ['a', '1'],
      ['b', '1'],
      ['c', '1'],
      ['a', '2'],
      ['a', '3'],
      ['a', '4!'],
      ['a', '5'],
      ['a', '6'],
      ['a', '7'],
      ['a', '8'],
    ]) {
      q.push(k!, v!)
    }
    assert.equal(q.running, 2)
    assert.equal(q.queued, 8)
    while (q.running > 0) {
      releases.shift()!()
      await new Promise((r) => setImmediate(r))
    }
    await q.idle()
    assert.equal(maxRunning, 2)
    assert.deepEqual(log, ['a:1', 'b:1', 'c:1', 'a:2,3', 'a:4!,5,6', 'a:7,8'])
  })

  it('clear() drops waiting items; idle() waits for running ones', async () => {
    let release = () => {}
    const seen: string[] = []
    const q = new KeyedQueue<string>({
      concurrency: 1,
      maxBatch: 1,
      run: async (_key, items) => {
        await new Promise<void>((r) => (release = r))
        seen.push(...items)
      },
      onError: () => {},
    })
    q.push('a', '1')
    q.push('a', '2')
    q.push('b', '1')
    assert.equal(q.clear(), 2)
    const idle = q.idle()
    release()
    await idle
    assert.deepEqual(seen, ['1'])
  })
})

describe('metadata', () => {
  const did = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz'
  const doc = {
    '@context': ['https://www.w3.org/ns/did/v1'],
    id: did,
    alsoKnownAs: ['https://example.com', 'at://Atproto.com'],
    verificationMethod: [],
    service: [
      {
        id: '#atproto_pds',
        type: 'AtprotoPersonalDataServer',
        serviceEndpoint: 'https://enoki.us-east.host.bsky.network',
      },
    ],
  }

  it('reads the PDS endpoint and claimed handle of a DID document', () => {
    const identity = parseDidDocument(did, doc)!
    assert.equal(identity.pdsEndpoint, 'https://enoki.us-east.host.bsky.network')
    assert.equal(identity.pdsHostname, 'enoki.us-east.host.bsky.network')
    assert.equal(declaredHandle(doc), 'atproto.com')
    assert.equal(parseDidDocument('did:plc:other', doc), undefined, 'id must be the DID')
    assert.equal(parseDidDocument(did, { id: did })!.pdsHostname, '')
  })

  it('writes known parts in at-kafka order and leaves unknown ones out', () => {
    const identity = { ...parseDidDocument(did, doc)!, handle: 'atproto.com' }
    const createdAt = '2023-04-12T04:53:57.057Z'
    const now = Date.parse(createdAt) + 90_500
    const profile = { did, followersCount: 3 }
    assert.deepEqual(Object.entries(buildMetadata({ identity, createdAt, profile }, now)), [
      ['didDocument', doc],
      ['pdsHost', 'https://enoki.us-east.host.bsky.network'],
      ['handle', 'atproto.com'],
      ['didCreatedAt', createdAt],
      ['accountAge', 90],
      ['profile', profile],
    ])
    assert.deepEqual(buildMetadata({}, now), {})
    assert.deepEqual(buildMetadata({ profile }, now), { profile })
  })

  it('reads the creation time from the first audit entry; age never negative', () => {
    assert.equal(
      creationTimeOf([
        { createdAt: '2024-01-01T00:00:00.000Z' },
        { createdAt: '2025-01-01T00:00:00Z' },
      ]),
      '2024-01-01T00:00:00.000Z',
    )
    assert.equal(creationTimeOf([]), undefined)
    assert.equal(creationTimeOf([{ createdAt: 'yesterday' }]), undefined)
    assert.equal(creationTimeOf({ error: 'NotFound' }), undefined)
    assert.equal(accountAgeSeconds('2024-01-01T00:00:10Z', Date.parse('2024-01-01T00:00:00Z')), 0)
  })

  it('caches profiles of established accounts only (more than 10 followers and posts)', () => {
    assert.equal(isEstablished({ followersCount: 11, postsCount: 11 }), true)
    assert.equal(isEstablished({ followersCount: 10, postsCount: 500 }), false)
    assert.equal(isEstablished({ followersCount: 500, postsCount: 10 }), false)
    assert.equal(isEstablished({}), false)
  })
})
