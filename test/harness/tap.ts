// Runs the real Tap (bluesky-social/indigo cmd/tap, built by scripts/tap/build.sh into
// .cache/tap/bin/tap) as a child process against a local PDS + PLC.
//
// Each startTap() gets a fresh work directory .cache/tap/run-*/ holding the SQLite database
// (tap.db) and the log (tap.log); Tap runs with that directory as cwd, because it autoloads a
// `.env` file from its cwd. restart() reuses the same port and database.
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import path from 'node:path'

const repoRoot = path.resolve(import.meta.dirname, '..', '..')
const tapCacheDir = path.join(repoRoot, '.cache', 'tap')
export const tapBinary = path.join(tapCacheDir, 'bin', 'tap')
const buildScript = path.join(repoRoot, 'scripts', 'tap', 'build.sh')

export interface TapOptions {
  /** the relay Tap subscribes to; a PDS's http(s) URL works (Tap calls subscribeRepos there) */
  relayUrl: string
  plcUrl: string
  /** sets TAP_ADMIN_PASSWORD: every route, /channel included, then needs Basic admin:<pw> */
  adminPassword?: string
  /** TAP_RETRY_TIMEOUT, a Go duration such as '2s' (Tap's default: 60s) */
  retryTimeout?: string
  /** extra environment for Tap (e.g. TAP_COLLECTION_FILTERS, TAP_DISABLE_ACKS, TAP_LOG_LEVEL) */
  env?: Record<string, string>
  /**
   * PDS URL that answers handle verification for `*.test` handles. Tap verifies a DID's handle
   * with DNS TXT `_atproto.<handle>` and then `https://<handle>/.well-known/atproto-did`; locally
   * both fail, so every identity event says `"handle":"handle.invalid"` and a handle change
   * produces no event at all. With this option Tap's HTTPS goes through a local CONNECT proxy
   * that terminates TLS for `*.test` (self-signed cert from `openssl`, trusted via SSL_CERT_FILE)
   * and asks this PDS's /.well-known/atproto-did with `Host: <handle>`.
   */
  resolveHandlesVia?: string
}

export interface TapHandle {
  /** ws://127.0.0.1:<port>; the event stream is `${url}/channel` */
  url: string
  /** http://127.0.0.1:<port> */
  httpUrl: string
  port: number
  /** `Basic …` for admin:<adminPassword>, undefined without a password */
  authHeader: string | undefined
  logFile: string
  /** the run directory (tap.db, tap.log) */
  dir: string
  /** POST /repos/add {"dids": [...]} (throws unless 200) */
  addRepos(dids: string[]): Promise<void>
  /** fetch() against Tap's HTTP API with the admin auth header, e.g. request('/info/' + did) */
  request(pathname: string, init?: RequestInit): Promise<Response>
  /** SIGTERM and wait for exit (SIGKILL after 15 s); files are kept for restart() */
  stop(): Promise<void>
  /** SIGKILL and wait for exit; files are kept for restart() */
  kill(): Promise<void>
  /** stop (if running) and start again on the same port with the same database */
  restart(): Promise<void>
  /** stop (if running) and delete the run directory (set KEEP_TAP_RUNS=1 to keep it) */
  close(): Promise<void>
}

/** Builds Tap through scripts/tap/build.sh (a no-op when the pinned version is built). */
export async function ensureTapBinary(): Promise<string> {
  const proc = spawn('bash', [buildScript], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  proc.stdout.on('data', (d: Buffer) => (output += d.toString()))
  proc.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const status = await new Promise<number | string>((resolve) => {
    proc.once('error', (err) => resolve(err.message))
    proc.once('close', (code, signal) => resolve(code ?? String(signal)))
  })
  if (status !== 0) throw new Error(`${buildScript} failed (${status}):\n${output}`)
  if (!fs.existsSync(tapBinary)) throw new Error(`${buildScript} did not produce ${tapBinary}`)
  return tapBinary
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

function tailOf(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface HandleProxy {
  proxyUrl: string
  certFile: string
  close(): Promise<void>
}

/**
 * An HTTP CONNECT proxy on 127.0.0.1 that serves https://<x>.test/.well-known/atproto-did from
 * `pdsUrl` (TLS terminated with a throwaway self-signed `*.test` certificate) and refuses every
 * other destination.
 */
async function startHandleProxy(pdsUrl: string, dir: string): Promise<HandleProxy> {
  const keyFile = path.join(dir, 'handles-key.pem')
  const certFile = path.join(dir, 'handles-cert.pem')
  const res = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      '/CN=tap-test-handles',
      '-addext',
      'subjectAltName=DNS:*.test',
    ],
    { encoding: 'utf8' },
  )
  if (res.error || res.status !== 0) {
    throw new Error(
      `resolveHandlesVia needs the openssl CLI to make a test certificate: ${res.error?.message ?? res.stderr}`,
    )
  }

  const tlsServer = https.createServer(
    { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) },
    (req, res) => {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '')
      if (req.method !== 'GET' || req.url !== '/.well-known/atproto-did') {
        res.writeHead(404).end()
        return
      }
      const upstream = http.get(
        new URL('/.well-known/atproto-did', pdsUrl),
        { headers: { host } },
        (up) => {
          res.writeHead(up.statusCode ?? 502, { 'content-type': 'text/plain' })
          up.pipe(res)
        },
      )
      upstream.on('error', () => res.writeHead(502).end())
    },
  )
  const proxy = http.createServer((_req, res) => res.writeHead(403).end())
  const sockets = new Set<net.Socket>()
  proxy.on('connection', (sock: net.Socket) => {
    sockets.add(sock)
    sock.once('close', () => sockets.delete(sock))
  })
  proxy.on('connect', (req: http.IncomingMessage, sock: net.Socket, head: Buffer) => {
    const host = (req.url ?? '').replace(/:\d+$/, '')
    if (!/^[a-z0-9-]+(\.[a-z0-9-]+)*\.test$/i.test(host)) {
      sock.end('HTTP/1.1 403 Forbidden\r\n\r\n')
      return
    }
    sock.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    if (head.length > 0) sock.unshift(head)
    tlsServer.emit('connection', sock)
  })
  const port = await new Promise<number>((resolve, reject) => {
    proxy.once('error', reject)
    proxy.listen(0, '127.0.0.1', () => resolve((proxy.address() as net.AddressInfo).port))
  })
  return {
    proxyUrl: `http://127.0.0.1:${port}`,
    certFile,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        proxy.close(() => resolve())
      }),
  }
}

export async function startTap(opts: TapOptions): Promise<TapHandle> {
  const bin = await ensureTapBinary()
  fs.mkdirSync(tapCacheDir, { recursive: true })
  const dir = fs.mkdtempSync(path.join(tapCacheDir, 'run-'))
  const logFile = path.join(dir, 'tap.log')
  const dbPath = path.join(dir, 'tap.db')
  let handleProxy: HandleProxy | undefined
  try {
    if (opts.resolveHandlesVia) handleProxy = await startHandleProxy(opts.resolveHandlesVia, dir)
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw err
  }
  const port = await freePort()
  const httpUrl = `http://127.0.0.1:${port}`
  const authHeader =
    opts.adminPassword !== undefined && opts.adminPassword !== ''
      ? 'Basic ' + Buffer.from(`admin:${opts.adminPassword}`).toString('base64')
      : undefined

  // Tap's own configuration only; nothing from the caller's TAP_*/ATP_* environment leaks in
  const baseEnv: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue
    if (/^(TAP_|ATP_|RELAY_|LOG_LEVEL$)/.test(k)) continue
    if (/^(https?_proxy|all_proxy|no_proxy)$/i.test(k)) continue
    baseEnv[k] = v
  }
  const env: Record<string, string> = {
    ...baseEnv,
    TAP_BIND: `127.0.0.1:${port}`,
    TAP_RELAY_URL: opts.relayUrl,
    TAP_PLC_URL: opts.plcUrl,
    TAP_DATABASE_URL: `sqlite://${dbPath}`,
    TAP_RETRY_TIMEOUT: opts.retryTimeout ?? '60s',
    TAP_LOG_LEVEL: 'info',
    // the identity cache is sized for the whole network by default
    RELAY_IDENT_CACHE_SIZE: '10000',
    // Handle verification fetches https://<handle>/.well-known/atproto-did. Send every non-local
    // request to a local proxy (the handle proxy, or a dead port) so nothing leaves the machine;
    // Go never proxies loopback. The DNS TXT lookup of _atproto.<handle> still goes to the
    // system resolver (`.test` is reserved: NXDOMAIN).
    HTTPS_PROXY: handleProxy?.proxyUrl ?? 'http://127.0.0.1:9',
    HTTP_PROXY: handleProxy?.proxyUrl ?? 'http://127.0.0.1:9',
    NO_PROXY: 'localhost,127.0.0.1,::1',
    ...(handleProxy ? { SSL_CERT_FILE: handleProxy.certFile } : {}),
    ...(opts.adminPassword ? { TAP_ADMIN_PASSWORD: opts.adminPassword } : {}),
    ...opts.env,
  }

  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let closed = false

  const killOnExit = () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  process.on('exit', killOnExit)

  const request = (pathname: string, init: RequestInit = {}): Promise<Response> => {
    const headers = new Headers(init.headers)
    if (authHeader && !headers.has('authorization')) headers.set('authorization', authHeader)
    return fetch(httpUrl + pathname, { ...init, headers })
  }

  const launch = async () => {
    const logFd = fs.openSync(logFile, 'a')
    fs.writeSync(logFd, `\n===== harness: starting tap at ${new Date().toISOString()} =====\n`)
    const proc = spawn(bin, ['run'], { cwd: dir, env, stdio: ['ignore', logFd, logFd] })
    fs.closeSync(logFd)
    child = proc
    let exitInfo: string | undefined
    exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        exitInfo = `code ${code} signal ${signal}`
        resolve()
      })
      proc.once('error', (err) => {
        exitInfo = `spawn error ${err.message}`
        resolve()
      })
    })
    const deadline = Date.now() + 30_000
    for (;;) {
      if (exitInfo) {
        throw new Error(
          `tap exited during startup (${exitInfo}); log ${logFile}:\n${tailOf(logFile)}`,
        )
      }
      try {
        const res = await request('/health', { signal: AbortSignal.timeout(1000) })
        await res.body?.cancel()
        if (res.ok) return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL')
        throw new Error(
          `tap did not become healthy within 30 s; log ${logFile}:\n${tailOf(logFile)}`,
        )
      }
      await sleep(50)
    }
  }

  const terminate = async (signal: NodeJS.Signals) => {
    const proc = child
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    proc.kill(signal)
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }

  try {
    await launch()
  } catch (err) {
    await terminate('SIGKILL')
    process.removeListener('exit', killOnExit)
    await handleProxy?.close()
    throw err
  }

  return {
    url: `ws://127.0.0.1:${port}`,
    httpUrl,
    port,
    authHeader,
    logFile,
    dir,
    request,
    async addRepos(dids) {
      const res = await request('/repos/add', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ dids }),
      })
      const body = await res.text()
      if (res.status !== 200) throw new Error(`tap /repos/add: HTTP ${res.status} ${body}`)
    },
    stop: () => terminate('SIGTERM'),
    kill: () => terminate('SIGKILL'),
    async restart() {
      if (closed) throw new Error('tap harness already closed')
      await terminate('SIGTERM')
      await launch()
    },
    async close() {
      if (closed) return
      closed = true
      await terminate('SIGTERM')
      process.removeListener('exit', killOnExit)
      await handleProxy?.close()
      if (!process.env.KEEP_TAP_RUNS) fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}
