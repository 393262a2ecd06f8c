import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import { ConfigError, FatalError } from './errors.ts'

export interface ListenAddress {
  host: string
  port: number
}

/** Parse `host:port`, `:port` or `[v6]:port`. */
export function parseListenAddress(value: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim())
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) {
    throw new ConfigError(`"${value}" is not a listen address of the form host:port`)
  }
  return { host: m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]!), port }
}

/** The metrics server could not listen where --metrics-listen-address says. */
export class MetricsListenError extends FatalError {
  override name = 'MetricsListenError'
}

function listenFailure(err: NodeJS.ErrnoException, address: ListenAddress): MetricsListenError {
  const where = `${address.host}:${address.port}`
  const why =
    err.code === 'EADDRINUSE'
      ? `${where} is already in use by another process`
      : err.code === 'EADDRNOTAVAIL'
        ? `${address.host} is not an address of this machine`
        : err.code === 'EACCES'
          ? `port ${address.port} needs privileges`
          : `${where}: ${err.message}`
  return new MetricsListenError(
    `the metrics server cannot listen: ${why} (choose another with --metrics-listen-address or METRICS_LISTEN_ADDRESS)`,
    { cause: err },
  )
}

export interface MetricsServer {
  readonly address: ListenAddress
  close(): Promise<void>
}

/**
 * Serves `/metrics`, `/health` (process up) and `/ready` (connected to source and output): 200
 * `ready`, or 503 `not ready: <reason>`.
 */
export async function startMetricsServer(opts: {
  address: ListenAddress
  registry: Registry
  /** Why the service is not ready; undefined when it is. */
  notReady: () => string | undefined
}): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end()
      return
    }
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      )
    } else if (path === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n')
    } else if (path === '/ready') {
      const why = opts.notReady()
      res
        .writeHead(why === undefined ? 200 : 503, { 'content-type': 'text/plain' })
        .end(why === undefined ? 'ready\n' : `not ready: ${why}\n`)
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenFailure(err, opts.address)))
    server.listen(opts.address.port, opts.address.host, () => {
      server.removeAllListeners('error')
      resolve()
    })
  })
  const bound = server.address() as AddressInfo
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
