import { createHash } from 'node:crypto'
import { Secp256k1Keypair } from '@atproto/crypto'
import { encode } from '@atproto/lex-cbor'
import { type Cid, type LexMap, type LexValue, createCid } from '@atproto/lex-data'
import {
  BlockMap,
  DataDiff,
  Leaf,
  MST,
  MemoryBlockstore,
  type NodeEntry,
  blocksToCarFile,
  mstUtil,
  signCommit,
} from '@atproto/repo'
import * as rec from './records.ts'
import { Rng } from './rng.ts'

/**
 * Bumped whenever the generator's output changes, so cached corpora of an older generator are
 * not reused.
 */
export const GENERATOR_VERSION = 3

/** First seq of a corpus: above 2^32, so every seq is a fixed-width (9-byte) CBOR integer. */
export const SEQ_BASE = 2 ** 33
/** `time` of the first frame; frame i is SEQ_BASE + i and TIME_BASE_MS + i ms. */
export const TIME_BASE_MS = Date.UTC(2026, 6, 4, 15, 0, 0)

export type FrameKind = '#commit' | '#identity' | '#account'

export interface GeneratedFrame {
  seq: number
  kind: FrameKind
  /** The frame as a relay sends it: DAG-CBOR header then body. */
  bytes: Uint8Array
  /** Record operations in a commit (0 for identity and account). */
  ops: number
  /** Events atkafka produces for this frame. */
  events: number
  /** `action:collection` of each op, for the corpus statistics. */
  opKinds: string[]
}

type OpKind =
  | 'like'
  | 'follow'
  | 'post'
  | 'repost'
  | 'block'
  | 'profile'
  | 'list'
  | 'other'
  | 'threadgate'
  | 'delete'

/** Share of each operation kind, in percent of all operations. */
const OP_WEIGHTS: Readonly<Record<OpKind, number>> = {
  like: 50,
  follow: 20,
  post: 11,
  repost: 9,
  block: 1,
  profile: 1,
  list: 1.5,
  other: 1,
  threadgate: 0.5,
  delete: 5,
}

/** Base repositories (shared starting trees) by record count: what the MST depth depends on. */
const BASE_SIZES = [300, 2_000, 6_000, 15_000, 40_000]
const BASE_WEIGHTS: Readonly<Record<string, number>> = { 0: 15, 1: 30, 2: 30, 3: 18, 4: 7 }
const BASE_COLLECTIONS: Readonly<Record<string, number>> = {
  'app.bsky.feed.like': 55,
  'app.bsky.graph.follow': 20,
  'app.bsky.feed.post': 14,
  'app.bsky.feed.repost': 9,
  'app.bsky.graph.block': 1,
  'app.bsky.graph.listitem': 1,
}

interface BaseRepo {
  root: Cid
  keys: string[]
}

interface RepoState {
  did: string
  keypair: Secp256k1Keypair
  mst: MST
  dataCid: Cid
  rev: string
  base: BaseRepo
  /** Keys created in the corpus, candidates for deletes. */
  created: string[]
  /** Base keys deleted already. */
  deletedBase: Set<string>
  lists: string[]
  posts: string[]
}

interface Op {
  action: 'create' | 'update' | 'delete'
  collection: string
  rkey: string
  record?: LexMap
}

/**
 * Base repositories, built once per process and shared by every generator: their blocks are
 * content-addressed and never change (commits keep their new MST nodes in memory).
 */
const BASE_STORAGE = new MemoryBlockstore()
const BASES = new Map<string, Promise<BaseRepo>>()

/** A repository of `size` records, built bottom-up (the same tree as adding keys one by one). */
async function buildBase(rng: Rng, size: number): Promise<BaseRepo> {
  const start = (TIME_BASE_MS - 400 * 86_400_000) * 1000
  const step = (400 * 86_400_000 * 1000) / size
  const keys: string[] = []
  for (let k = 0; k < size; k++) {
    const collection = rng.weighted(BASE_COLLECTIONS)
    keys.push(`${collection}/${rec.tid(start + k * step + rng.int(0, 999), rng.int(0, 31))}`)
  }
  keys.push('app.bsky.actor.profile/self')
  const leaves = await Promise.all(
    [...new Set(keys)].sort().map(async (key) => ({
      key,
      cid: rec.randomCid(rng),
      layer: await mstUtil.leadingZerosOnHash(key),
    })),
  )
  type L = (typeof leaves)[number]
  const build = async (list: L[], layer: number): Promise<MST> => {
    const entries: NodeEntry[] = []
    let run: L[] = []
    const flush = async () => {
      if (run.length > 0) entries.push(await build(run, layer - 1))
      run = []
    }
    for (const l of list) {
      if (l.layer >= layer) {
        await flush()
        entries.push(new Leaf(l.key, l.cid))
      } else {
        run.push(l)
      }
    }
    await flush()
    return MST.create(BASE_STORAGE, entries, { layer })
  }
  const mst = await build(leaves, Math.max(...leaves.map((l) => l.layer)))
  const { root, blocks } = await mst.getUnstoredBlocks()
  await BASE_STORAGE.putMany(blocks)
  return { root, keys: keys.filter((k) => k !== 'app.bsky.actor.profile/self') }
}

function cidOfBytes(bytes: Uint8Array): Cid {
  return createCid(0x71, 0x12, createHash('sha256').update(bytes).digest())
}

function didFrom(rng: Rng): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  let s = 'did:plc:'
  for (let i = 0; i < 24; i++) s += alphabet[rng.u32() & 31]
  return s
}

/** Deterministic firehose corpus generator; call {@link next} once per frame. */
export class CorpusGenerator {
  readonly #seed: number
  readonly #rng: Rng
  readonly #dids: string[]
  readonly #repos = new Map<string, RepoState>()
  readonly #recentPosts: rec.StrongRef[] = []
  readonly #world: rec.World
  #index = 0

  constructor(seed: number, totalFrames: number) {
    this.#seed = seed
    this.#rng = new Rng(seed)
    const didCount = Math.max(20, Math.min(20_000, Math.round(totalFrames / 8)))
    const didRng = this.#rng.fork()
    this.#dids = Array.from({ length: didCount }, () => didFrom(didRng))
    const recent = this.#recentPosts
    const worldRng = this.#rng.fork()
    this.#world = {
      dids: this.#dids,
      handleOf: (did) => `${did.slice(8, 16)}.bsky.social`,
      recentPost: () =>
        recent.length === 0 ? undefined : recent[worldRng.int(0, recent.length - 1)],
    }
  }

  #base(i: number): Promise<BaseRepo> {
    const key = `${this.#seed}:${i}`
    let base = BASES.get(key)
    if (base === undefined) {
      base = buildBase(new Rng(this.#seed * 31 + i), BASE_SIZES[i]!)
      BASES.set(key, base)
    }
    return base
  }

  async #repo(did: string): Promise<RepoState> {
    const existing = this.#repos.get(did)
    if (existing) return existing
    const rng = new Rng(this.#rng.u32())
    const base = await this.#base(Number(rng.weighted(BASE_WEIGHTS)))
    const state: RepoState = {
      did,
      keypair: await Secp256k1Keypair.import(rng.bytes(32)),
      mst: MST.load(BASE_STORAGE, base.root),
      dataCid: base.root,
      rev: rec.tid((TIME_BASE_MS - rng.int(1, 86_400_000)) * 1000, rng.int(0, 31)),
      base,
      created: [],
      deletedBase: new Set(),
      lists: [],
      posts: [],
    }
    this.#repos.set(did, state)
    return state
  }

  /**
   * An actor for the next event: some accounts far more active than others (the busiest one
   * has about 0.5% of the events at the default size), a long tail of quiet ones.
   */
  #actor(): string {
    const r = this.#rng.next()
    return this.#dids[Math.floor(this.#dids.length * r * Math.sqrt(r))]!
  }

  async next(): Promise<GeneratedFrame> {
    const i = this.#index++
    const seq = SEQ_BASE + i
    const timeMs = TIME_BASE_MS + i
    const time = rec.isoTime(timeMs)
    const did = this.#actor()
    const r = this.#rng.next()
    if (r < 0.0035) return this.#identity(seq, did, time)
    if (r < 0.005) return this.#account(seq, did, time)
    return this.#commit(seq, did, timeMs)
  }

  #identity(seq: number, did: string, time: string): GeneratedFrame {
    const body: LexMap = { seq, did, time }
    if (this.#rng.chance(0.9)) {
      body['handle'] = this.#rng.chance(0.03) ? 'handle.invalid' : this.#world.handleOf(did)
    }
    return frame('#identity', seq, body, 0, [])
  }

  #account(seq: number, did: string, time: string): GeneratedFrame {
    const active = this.#rng.chance(0.7)
    const body: LexMap = { seq, did, time, active }
    if (!active) {
      body['status'] = this.#rng.pick(['deactivated', 'takendown', 'suspended', 'deleted'])
    }
    return frame('#account', seq, body, 0, [])
  }

  #opCount(): number {
    const r = this.#rng.next()
    if (r < 0.9775) return 1
    if (r < 0.9975) return this.#rng.int(2, 4)
    const x = this.#rng.next()
    return 5 + Math.floor(195 * x * x * x * x)
  }

  async #commit(seq: number, did: string, timeMs: number): Promise<GeneratedFrame> {
    const repo = await this.#repo(did)
    const n = this.#opCount()
    let ops: Op[]
    if (n >= 5) ops = this.#bulkOps(repo, timeMs, n)
    else ops = Array.from({ length: n }, (_, k) => this.#op(repo, timeMs, k))
    return this.#formatCommit(repo, seq, timeMs, ops)
  }

  #createdAt(timeMs: number): string {
    return rec.isoTime(timeMs - this.#rng.int(0, 3000))
  }

  #rkey(timeMs: number, k: number): string {
    return rec.tid(timeMs * 1000 - 500 + k, this.#rng.int(0, 1023))
  }

  #op(repo: RepoState, timeMs: number, k: number, forced?: OpKind): Op {
    const rng = this.#rng
    const kind = forced ?? rng.weighted(OP_WEIGHTS)
    const createdAt = this.#createdAt(timeMs)
    const rkey = this.#rkey(timeMs, k)
    const w = this.#world
    switch (kind) {
      case 'like':
        return {
          action: 'create',
          collection: 'app.bsky.feed.like',
          rkey,
          record: rec.like(rng, w, createdAt),
        }
      case 'follow':
        return {
          action: 'create',
          collection: 'app.bsky.graph.follow',
          rkey,
          record: rec.follow(rng, w, createdAt),
        }
      case 'repost':
        return {
          action: 'create',
          collection: 'app.bsky.feed.repost',
          rkey,
          record: rec.repost(rng, w, createdAt),
        }
      case 'block':
        return {
          action: 'create',
          collection: 'app.bsky.graph.block',
          rkey,
          record: rec.block(rng, w, createdAt),
        }
      case 'post': {
        repo.posts.push(`at://${repo.did}/app.bsky.feed.post/${rkey}`)
        return {
          action: 'create',
          collection: 'app.bsky.feed.post',
          rkey,
          record: rec.post(rng, w, createdAt),
        }
      }
      case 'profile':
        return {
          action: 'update',
          collection: 'app.bsky.actor.profile',
          rkey: 'self',
          record: rec.profile(rng, createdAt),
        }
      case 'list': {
        if (repo.lists.length > 0 && rng.chance(0.7)) {
          const listUri = rng.pick(repo.lists)
          if (rng.chance(0.15)) {
            return {
              action: 'update',
              collection: 'app.bsky.graph.list',
              rkey: listUri.slice(listUri.lastIndexOf('/') + 1),
              record: rec.list(rng, createdAt),
            }
          }
          return {
            action: 'create',
            collection: 'app.bsky.graph.listitem',
            rkey,
            record: rec.listItem(rng, w, listUri, createdAt),
          }
        }
        repo.lists.push(`at://${repo.did}/app.bsky.graph.list/${rkey}`)
        return {
          action: 'create',
          collection: 'app.bsky.graph.list',
          rkey,
          record: rec.list(rng, createdAt),
        }
      }
      case 'threadgate': {
        const postUri = repo.posts.length > 0 ? rng.pick(repo.posts) : undefined
        if (postUri === undefined) return this.#op(repo, timeMs, k, 'like')
        const postRkey = postUri.slice(postUri.lastIndexOf('/') + 1)
        return {
          action: 'create',
          collection: 'app.bsky.feed.threadgate',
          rkey: postRkey,
          record: rec.threadgate(rng, postUri, createdAt),
        }
      }
      case 'other': {
        const collection = rng.pick(rec.OTHER_COLLECTIONS)
        const key = collection === 'chat.bsky.actor.declaration' ? 'self' : rkey
        return {
          action: key === 'self' ? 'update' : 'create',
          collection,
          rkey: key,
          record: rec.other(rng, w, collection, createdAt),
        }
      }
      case 'delete':
        return this.#delete(repo, timeMs, k)
    }
  }

  #delete(repo: RepoState, timeMs: number, k: number): Op {
    const rng = this.#rng
    let key: string | undefined
    if (repo.created.length > 0 && rng.chance(0.6)) {
      key = repo.created.splice(rng.int(0, repo.created.length - 1), 1)[0]
    }
    for (let tries = 0; key === undefined && tries < 8; tries++) {
      const candidate = rng.pick(repo.base.keys)
      if (!repo.deletedBase.has(candidate)) {
        repo.deletedBase.add(candidate)
        key = candidate
      }
    }
    if (key === undefined) return this.#op(repo, timeMs, k, 'like')
    const slash = key.indexOf('/')
    return { action: 'delete', collection: key.slice(0, slash), rkey: key.slice(slash + 1) }
  }

  /** A commit of several ops of one kind: a list import, a follow batch, a mass delete, a thread. */
  #bulkOps(repo: RepoState, timeMs: number, n: number): Op[] {
    const theme = this.#rng.weighted({ follow: 35, like: 25, list: 15, delete: 15, post: 10 })
    const ops: Op[] = []
    const seen = new Set<string>()
    if (theme === 'list' && repo.lists.length === 0) ops.push(this.#op(repo, timeMs, 0, 'list'))
    for (let k = ops.length; k < n; k++) {
      const kind: OpKind =
        theme === 'post' && k > 0 && this.#rng.chance(0.3) ? 'threadgate' : (theme as OpKind)
      const op = this.#op(repo, timeMs, k, kind)
      const key = `${op.collection}/${op.rkey}`
      if (seen.has(key)) continue
      seen.add(key)
      ops.push(op)
    }
    return ops
  }

  async #formatCommit(
    repo: RepoState,
    seq: number,
    timeMs: number,
    ops: Op[],
  ): Promise<GeneratedFrame> {
    const prev = repo.mst
    let data = prev
    const leaves = new BlockMap()
    const firehoseOps: LexMap[] = []
    const applied: Op[] = []
    const touched = new Set<string>()
    for (const op of ops) {
      const key = `${op.collection}/${op.rkey}`
      // One op per path and commit, as a PDS writes them.
      if (touched.has(key)) continue
      touched.add(key)
      const old = await data.get(key)
      if (op.action === 'delete') {
        if (old === null) continue
        data = await data.delete(key)
        firehoseOps.push({ action: 'delete', path: key, cid: null, prev: old })
      } else {
        const bytes = encode(op.record!)
        const cid = cidOfBytes(bytes)
        leaves.set(cid, bytes)
        if (old === null) {
          data = await data.add(key, cid)
          firehoseOps.push({ action: 'create', path: key, cid })
          if (op.collection !== 'app.bsky.actor.profile') repo.created.push(key)
        } else {
          data = await data.update(key, cid)
          firehoseOps.push({ action: 'update', path: key, cid, prev: old })
        }
        if (op.collection === 'app.bsky.feed.post') {
          this.#rememberPost({ uri: `at://${repo.did}/${key}`, cid: cid.toString() })
        }
      }
      applied.push(op)
    }
    const dataCid = await data.getPointer()
    const diff = await DataDiff.of(data, prev)
    const blocks = new BlockMap()
    blocks.addMap(diff.newMstBlocks)
    for (const op of applied)
      blocks.addMap(await data.getCoveringProof(`${op.collection}/${op.rkey}`))
    blocks.addMap(leaves)

    const rev = rec.tid(timeMs * 1000, 7)
    const commit = await signCommit(
      { did: repo.did, version: 3, rev, prev: null, data: dataCid },
      repo.keypair,
    )
    const commitBytes = encode(commit as unknown as LexValue)
    const commitCid = cidOfBytes(commitBytes)
    blocks.set(commitCid, commitBytes)
    const body: LexMap = {
      seq,
      rebase: false,
      tooBig: false,
      repo: repo.did,
      commit: commitCid,
      rev,
      since: repo.rev,
      blocks: await blocksToCarFile(commitCid, blocks),
      ops: firehoseOps,
      blobs: [],
      time: rec.isoTime(timeMs),
      prevData: repo.dataCid,
    }
    repo.mst = data
    repo.dataCid = dataCid
    repo.rev = rev
    const kinds = firehoseOps.map((o, i) => `${String(o['action'])}:${applied[i]!.collection}`)
    return frame('#commit', seq, body, firehoseOps.length, kinds)
  }

  #rememberPost(ref: rec.StrongRef): void {
    const recent = this.#recentPosts
    if (recent.length < 5000) recent.push(ref)
    else recent[this.#rng.int(0, recent.length - 1)] = ref
  }
}

function frame(
  kind: FrameKind,
  seq: number,
  body: LexMap,
  ops: number,
  opKinds: string[],
): GeneratedFrame {
  const header = encode({ t: kind, op: 1 })
  const payload = encode(body)
  const bytes = new Uint8Array(header.length + payload.length)
  bytes.set(header, 0)
  bytes.set(payload, header.length)
  return { seq, kind, bytes, ops, events: kind === '#commit' ? ops : 1, opKinds }
}
