// A real PLC + PDS (@atproto/dev-env TestNetworkNoAppView) in this process, and helpers to
// create accounts (`<name>.test` handles) and records through an AtpAgent.
//
// The PDS's firehose is a plain WebSocket endpoint: any external client (ws, Tap) can consume
// `firehoseUrl`. The PDS's public URL is http://localhost:<port> (hostname 'localhost'), which
// is also the `#atproto_pds` endpoint written into the accounts' DID documents on the PLC.
import { AtpAgent } from '@atproto/api'
import { TestNetworkNoAppView } from '@atproto/dev-env'

export interface PdsHandle {
  network: TestNetworkNoAppView
  /** http://localhost:<port> */
  pdsUrl: string
  /** http://localhost:<port> */
  plcUrl: string
  /** ws://localhost:<port>/xrpc/com.atproto.sync.subscribeRepos */
  firehoseUrl: string
  close(): Promise<void>
}

export function firehoseUrlOf(pdsUrl: string): string {
  return pdsUrl.replace(/^http/, 'ws') + '/xrpc/com.atproto.sync.subscribeRepos'
}

export async function startPds(): Promise<PdsHandle> {
  const network = await TestNetworkNoAppView.create({ pds: { hostname: 'localhost' } })
  let closed = false
  return {
    network,
    pdsUrl: network.pds.url,
    plcUrl: network.plc.url,
    firehoseUrl: firehoseUrlOf(network.pds.url),
    async close() {
      if (closed) return
      closed = true
      await network.close()
    },
  }
}

export interface TestAccount {
  did: string
  handle: string
  password: string
  /** logged in as this account */
  agent: AtpAgent
}

export interface RecordRef {
  uri: string
  cid: string
  collection: string
  rkey: string
}

let counter = 0

/**
 * A fresh short name usable as the first label of a `.test` handle (the PDS requires 3–18
 * characters, letters/digits/hyphens).
 */
export function uniqueName(prefix = 'u'): string {
  counter += 1
  const rand = Math.random().toString(36).slice(2, 8)
  return `${prefix}${counter.toString(36)}${rand}`.slice(0, 18).toLowerCase()
}

export function toTestHandle(name: string): string {
  return name.endsWith('.test') ? name : `${name}.test`
}

/** Creates an account `<name>.test` (default: a unique name) and returns an agent logged in as it. */
export async function createAccount(
  pdsUrl: string,
  name: string = uniqueName(),
  password = 'hunter2-' + Math.random().toString(36).slice(2),
): Promise<TestAccount> {
  const handle = toTestHandle(name)
  const agent = new AtpAgent({ service: pdsUrl })
  const res = await agent.createAccount({
    handle,
    password,
    email: `${handle.replace(/\./g, '-')}@example.com`,
  })
  return { did: res.data.did, handle: res.data.handle, password, agent }
}

/** Logs in an existing account (e.g. `mod-authority.test` / `hunter2` on the full network). */
export async function login(
  pdsUrl: string,
  identifier: string,
  password: string,
): Promise<TestAccount> {
  const agent = new AtpAgent({ service: pdsUrl })
  const res = await agent.login({ identifier, password })
  return { did: res.data.did, handle: res.data.handle, password, agent }
}

function refOf(uri: string, cid: string): RecordRef {
  // at://<did>/<collection>/<rkey>
  const [, collection = '', rkey = ''] = uri.slice('at://'.length).split('/')
  return { uri, cid, collection, rkey }
}

export async function createRecord(
  account: TestAccount,
  collection: string,
  record: Record<string, unknown>,
  rkey?: string,
): Promise<RecordRef> {
  const res = await account.agent.com.atproto.repo.createRecord({
    repo: account.did,
    collection,
    rkey,
    record: { $type: collection, ...record },
  })
  return refOf(res.data.uri, res.data.cid)
}

/** Creates or replaces the record at collection/rkey (an `update` op when it exists). */
export async function putRecord(
  account: TestAccount,
  collection: string,
  rkey: string,
  record: Record<string, unknown>,
): Promise<RecordRef> {
  const res = await account.agent.com.atproto.repo.putRecord({
    repo: account.did,
    collection,
    rkey,
    record: { $type: collection, ...record },
  })
  return refOf(res.data.uri, res.data.cid)
}

export async function deleteRecord(
  account: TestAccount,
  collection: string,
  rkey: string,
): Promise<void> {
  await account.agent.com.atproto.repo.deleteRecord({ repo: account.did, collection, rkey })
}

export function createPost(account: TestAccount, text: string): Promise<RecordRef> {
  return createRecord(account, 'app.bsky.feed.post', { text, createdAt: new Date().toISOString() })
}

export function createProfile(account: TestAccount, displayName: string): Promise<RecordRef> {
  return putRecord(account, 'app.bsky.actor.profile', 'self', { displayName })
}

export function follow(account: TestAccount, subjectDid: string): Promise<RecordRef> {
  return createRecord(account, 'app.bsky.graph.follow', {
    subject: subjectDid,
    createdAt: new Date().toISOString(),
  })
}

/**
 * Changes the account's handle (PLC operation + `#identity` event on the firehose). `name` gets
 * `.test` appended unless present.
 */
export async function updateHandle(account: TestAccount, name: string): Promise<string> {
  const handle = toTestHandle(name)
  await account.agent.com.atproto.identity.updateHandle({ handle })
  account.handle = handle
  return handle
}
