import { type Cid, type LexMap, type LexValue, createCid } from '@atproto/lex-data'
import type { Rng } from './rng.ts'

/** Record identity: the pieces of a strong reference (`{uri, cid}`). */
export interface StrongRef {
  uri: string
  cid: string
}

const DAG_CBOR = 0x71
const RAW = 0x55
const SHA256 = 0x12

/** A CID of random content (the bench never needs the bytes behind it). */
export function randomCid(rng: Rng, codec: 'dag-cbor' | 'raw' = 'dag-cbor'): Cid {
  return createCid(codec === 'raw' ? RAW : DAG_CBOR, SHA256, rng.bytes(32))
}

const TID_CHARS = '234567abcdefghijklmnopqrstuvwxyz'

/** A TID (record key / revision) for a time in microseconds and a clock id (0-1023). */
export function tid(micros: number, clockId: number): string {
  let v = (BigInt(Math.floor(micros)) << 10n) | BigInt(clockId & 1023)
  let out = ''
  for (let i = 0; i < 13; i++) {
    out = TID_CHARS[Number(v & 31n)]! + out
    v >>= 5n
  }
  return out
}

const WORDS = (
  'the a and to of in is it that for on you this with be at are not have was just so but my ' +
  'like what all they we one about can if do out me get up your more no how time today new ' +
  'people good think know now really some would there when make back see going because day ' +
  'love right still year great want first work over even much here thing why also night life ' +
  'world feel said last long never best post bluesky thread feed art music game photo cat ' +
  'dog coffee weekend morning news science book read write city rain summer friend happy ' +
  'open source code release update data network protocol federation moderation label list'
).split(' ')
const PHRASES = [
  'おはようございます',
  '今日はいい天気ですね',
  'bom dia pessoal',
  'que saudade',
  'guten Morgen zusammen',
  'buenos días',
  'ça va bien',
  '좋은 아침',
]
const EMOJI = ['🦋', '☀️', '😂', '❤️', '🎉', '🙏', '👀', '🔥', '✨', '🌧️']
const LANGS: Readonly<Record<string, number>> = {
  en: 60,
  ja: 15,
  pt: 12,
  de: 4,
  es: 4,
  fr: 3,
  ko: 2,
}
const HOSTS = ['example.com', 'news.example.org', 'blog.example.net', 'video.example.tv']
const MIMES = ['image/jpeg', 'image/png', 'image/webp']

/** The part of the generator's world a record may point at. */
export interface World {
  dids: readonly string[]
  handleOf(did: string): string
  /** A recent post of someone, for likes, reposts, quotes and replies. */
  recentPost(): StrongRef | undefined
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString()
}

function text(rng: Rng, minChars: number, maxChars: number): string {
  const target = rng.int(minChars, maxChars)
  const parts: string[] = []
  let length = 0
  if (rng.chance(0.2)) {
    const p = rng.pick(PHRASES)
    parts.push(p)
    length += p.length
  }
  while (length < target) {
    const w = rng.chance(0.04) ? rng.pick(EMOJI) : rng.pick(WORDS)
    parts.push(w)
    length += w.length + 1
  }
  let s = parts.join(' ')
  s = s.charAt(0).toUpperCase() + s.slice(1)
  return rng.chance(0.5) ? s + '.' : s
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8')
}

function blob(rng: Rng, mimes: readonly string[], minSize: number, maxSize: number): LexMap {
  return {
    $type: 'blob',
    ref: randomCid(rng, 'raw'),
    mimeType: rng.pick(mimes),
    size: rng.int(minSize, maxSize),
  }
}

function strongRef(ref: StrongRef): LexMap {
  return { uri: ref.uri, cid: ref.cid }
}

function langs(rng: Rng): string[] {
  const first = rng.weighted(LANGS)
  return rng.chance(0.05) ? [first, 'en'] : [first]
}

/** Post text with link, mention and hashtag facets at the right UTF-8 byte offsets. */
function textWithFacets(rng: Rng, world: World): { text: string; facets?: LexMap[] } {
  let s = text(rng, 8, rng.chance(0.15) ? 290 : 140)
  const facets: LexMap[] = []
  const add = (piece: string, feature: LexMap) => {
    s += ' '
    const byteStart = utf8Length(s)
    s += piece
    facets.push({ index: { byteStart, byteEnd: utf8Length(s) }, features: [feature] })
  }
  if (rng.chance(0.12)) {
    const did = rng.pick(world.dids)
    add('@' + world.handleOf(did), { $type: 'app.bsky.richtext.facet#mention', did })
  }
  if (rng.chance(0.1)) {
    const uri = `https://${rng.pick(HOSTS)}/${rng.pick(WORDS)}/${rng.int(1000, 999999)}`
    add(uri.slice(8, 38), { $type: 'app.bsky.richtext.facet#link', uri })
  }
  if (rng.chance(0.08)) {
    const tag = rng.pick(WORDS)
    add('#' + tag, { $type: 'app.bsky.richtext.facet#tag', tag })
  }
  return facets.length > 0 ? { text: s, facets } : { text: s }
}

function images(rng: Rng): LexMap {
  const n = rng.weighted({ 1: 70, 2: 12, 3: 6, 4: 12 })
  const list: LexValue[] = []
  for (let i = 0; i < Number(n); i++) {
    const image: LexMap = {
      alt: rng.chance(0.4) ? text(rng, 10, 200) : '',
      image: blob(rng, MIMES, 40_000, 1_000_000),
    }
    if (rng.chance(0.9))
      image['aspectRatio'] = { width: rng.int(400, 2000), height: rng.int(400, 2000) }
    list.push(image)
  }
  return { $type: 'app.bsky.embed.images', images: list }
}

function external(rng: Rng): LexMap {
  const ext: LexMap = {
    uri: `https://${rng.pick(HOSTS)}/${rng.pick(WORDS)}-${rng.pick(WORDS)}-${rng.int(1, 99999)}`,
    title: text(rng, 10, 90),
    description: text(rng, 0, 250),
  }
  if (rng.chance(0.7)) ext['thumb'] = blob(rng, ['image/jpeg'], 10_000, 900_000)
  return { $type: 'app.bsky.embed.external', external: ext }
}

function embed(rng: Rng, world: World): LexMap | undefined {
  const kind = rng.weighted({ none: 58, images: 25, external: 8, record: 5, media: 2, video: 2 })
  const quoted = world.recentPost()
  switch (kind) {
    case 'images':
      return images(rng)
    case 'external':
      return external(rng)
    case 'record':
      return quoted && { $type: 'app.bsky.embed.record', record: strongRef(quoted) }
    case 'media':
      return (
        quoted && {
          $type: 'app.bsky.embed.recordWithMedia',
          record: { $type: 'app.bsky.embed.record', record: strongRef(quoted) },
          media: images(rng),
        }
      )
    case 'video':
      return {
        $type: 'app.bsky.embed.video',
        video: blob(rng, ['video/mp4'], 500_000, 50_000_000),
        aspectRatio: { width: 1080, height: 1920 },
      }
    default:
      return undefined
  }
}

export function post(rng: Rng, world: World, createdAt: string): LexMap {
  const record: LexMap = { $type: 'app.bsky.feed.post', ...textWithFacets(rng, world) }
  const parent = rng.chance(0.35) ? world.recentPost() : undefined
  if (parent) {
    const root = rng.chance(0.5) ? parent : (world.recentPost() ?? parent)
    record['reply'] = { root: strongRef(root), parent: strongRef(parent) }
  }
  const e = embed(rng, world)
  if (e) record['embed'] = e
  if (rng.chance(0.9)) record['langs'] = langs(rng)
  record['createdAt'] = createdAt
  return record
}

function subjectRef(rng: Rng, world: World): LexMap {
  const p = world.recentPost()
  if (p) return strongRef(p)
  const did = rng.pick(world.dids)
  return {
    uri: `at://${did}/app.bsky.feed.post/${tid(1.7e15 + rng.int(0, 1e9) * 1e3, rng.int(0, 31))}`,
    cid: randomCid(rng).toString(),
  }
}

export function like(rng: Rng, world: World, createdAt: string): LexMap {
  const record: LexMap = {
    $type: 'app.bsky.feed.like',
    subject: subjectRef(rng, world),
    createdAt,
  }
  if (rng.chance(0.1)) record['via'] = subjectRef(rng, world)
  return record
}

export function repost(rng: Rng, world: World, createdAt: string): LexMap {
  return { $type: 'app.bsky.feed.repost', subject: subjectRef(rng, world), createdAt }
}

export function follow(rng: Rng, world: World, createdAt: string): LexMap {
  return { $type: 'app.bsky.graph.follow', subject: rng.pick(world.dids), createdAt }
}

export function block(rng: Rng, world: World, createdAt: string): LexMap {
  return { $type: 'app.bsky.graph.block', subject: rng.pick(world.dids), createdAt }
}

export function profile(rng: Rng, createdAt: string): LexMap {
  const record: LexMap = {
    $type: 'app.bsky.actor.profile',
    displayName: text(rng, 3, 30),
    description: text(rng, 0, 250),
  }
  if (rng.chance(0.8)) record['avatar'] = blob(rng, ['image/jpeg'], 20_000, 1_000_000)
  if (rng.chance(0.5)) record['banner'] = blob(rng, ['image/jpeg'], 50_000, 1_000_000)
  record['createdAt'] = createdAt
  return record
}

export function list(rng: Rng, createdAt: string): LexMap {
  return {
    $type: 'app.bsky.graph.list',
    purpose: rng.chance(0.8) ? 'app.bsky.graph.defs#curatelist' : 'app.bsky.graph.defs#modlist',
    name: text(rng, 3, 40),
    description: text(rng, 0, 200),
    createdAt,
  }
}

export function listItem(rng: Rng, world: World, listUri: string, createdAt: string): LexMap {
  return {
    $type: 'app.bsky.graph.listitem',
    subject: rng.pick(world.dids),
    list: listUri,
    createdAt,
  }
}

export function threadgate(rng: Rng, postUri: string, createdAt: string): LexMap {
  return {
    $type: 'app.bsky.feed.threadgate',
    post: postUri,
    allow: rng.chance(0.2) ? [] : [{ $type: 'app.bsky.feed.threadgate#followingRule' }],
    hiddenReplies: [],
    createdAt,
  }
}

/** Collections outside app.bsky, some with raw bytes (`$bytes` in JSON). */
export const OTHER_COLLECTIONS = [
  'chat.bsky.actor.declaration',
  'app.bsky.feed.postgate',
  'app.bsky.graph.starterpack',
  'com.whtwnd.blog.entry',
  'sh.tangled.feed.star',
  'xyz.statusphere.status',
  'fyi.unravel.frontpage.vote',
  'community.lexicon.calendar.event',
] as const

export function other(rng: Rng, world: World, collection: string, createdAt: string): LexMap {
  switch (collection) {
    case 'chat.bsky.actor.declaration':
      return { $type: collection, allowIncoming: rng.pick(['all', 'following', 'none']) }
    case 'com.whtwnd.blog.entry':
      return {
        $type: collection,
        title: text(rng, 10, 60),
        content: text(rng, 500, 3000),
        visibility: 'public',
        createdAt,
      }
    case 'xyz.statusphere.status':
      return { $type: collection, status: rng.pick(EMOJI), createdAt }
    case 'sh.tangled.feed.star':
      return {
        $type: collection,
        subject: `at://${rng.pick(world.dids)}/sh.tangled.repo/x`,
        createdAt,
      }
    default:
      return {
        $type: collection,
        subject: subjectRef(rng, world),
        nonce: rng.bytes(rng.int(8, 48)),
        weight: rng.int(-5, 100),
        tags: [rng.pick(WORDS), rng.pick(WORDS)],
        createdAt,
      }
  }
}
