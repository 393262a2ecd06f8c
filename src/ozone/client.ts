import { type AtpSessionEvent, CredentialSession, XRPCError } from '@atproto/api'
import { errorMessage, networkCause } from '../errors.ts'
import type { Logger } from '../logger.ts'
import {
  type OzoneError,
  OzoneAuthError,
  OzoneLabelerError,
  OzoneRequestError,
  OzoneResponseError,
  OzoneUnavailableError,
} from './errors.ts'
import type { OzoneMetrics } from './metrics.ts'
import { type EventPage, parsePage } from './page.ts'

export interface OzoneClientOptions {
  /** `https://pds.example.com`: where the moderator account lives. */
  pdsHost: string
  identifier: string
  password: string
  /** Ozone's service DID; requests carry `atproto-proxy: <did>#atproto_labeler`. */
  labelerDid: string
  logger: Logger
  metrics: OzoneMetrics
  /** Aborts every request in flight (shutdown). */
  signal: AbortSignal
  /** Time limit of each HTTP request. Default 30 s. */
  requestTimeoutMs?: number
  fetch?: typeof globalThis.fetch
}

export interface QueryEventsParams {
  /** Inclusive lower bound on `createdAt`. */
  createdAfter?: string
  /** Ozone's cursor from the previous page. */
  cursor?: string
  limit: number
}

/** Error names meaning "this session's token is not accepted". */
const TOKEN_ERRORS = new Set(['ExpiredToken', 'InvalidToken', 'AuthMissing', 'AuthRequired'])

/**
 * `tools.ozone.moderation.queryEvents` through the moderator's PDS. One credential session:
 * `@atproto/api` refreshes the access token when the PDS says it expired; when the refresh
 * token is refused too, the session is gone and the next call logs in again. Every failure is
 * an {@link OzoneError} that says whether retrying can help. The page body is parsed here as
 * plain JSON (not lexicon-decoded), so events pass through exactly as Ozone sent them.
 */
export class OzoneClient {
  readonly #opts: OzoneClientOptions
  readonly #log: Logger
  readonly #session: CredentialSession
  readonly #proxy: string
  #refreshes = 0

  constructor(opts: OzoneClientOptions) {
    this.#opts = opts
    this.#log = opts.logger
    this.#proxy = `${opts.labelerDid}#atproto_labeler`
    const baseFetch = opts.fetch ?? globalThis.fetch
    const timeoutMs = opts.requestTimeoutMs ?? 30000
    const fetchWithLimits: typeof globalThis.fetch = (input, init) => {
      const signals = [opts.signal, AbortSignal.timeout(timeoutMs)]
      if (init?.signal) signals.push(init.signal)
      else if (input instanceof Request) signals.push(input.signal)
      return baseFetch(input, { ...init, signal: AbortSignal.any(signals) })
    }
    this.#session = new CredentialSession(new URL(opts.pdsHost), fetchWithLimits, (event) =>
      this.#onSessionEvent(event),
    )
  }

  /** The DID of the logged-in account, once logged in. */
  get did(): string | undefined {
    return this.#session.did
  }

  /** The credential session (tests use it to expire tokens). */
  get session(): CredentialSession {
    return this.#session
  }

  #onSessionEvent(event: AtpSessionEvent): void {
    const { metrics } = this.#opts
    if (event === 'update') {
      this.#refreshes++
      metrics.refreshes.inc({ status: 'ok' })
      this.#log.info('session refreshed')
    } else if (event === 'expired') {
      metrics.refreshes.inc({ status: 'expired' })
      this.#log.warn('the PDS refused the refresh token; logging in again')
    } else if (event === 'network-error') {
      metrics.refreshes.inc({ status: 'error' })
      this.#log.warn('session refresh failed; will retry')
    }
  }

  /** Log in with the identifier and password (createSession). */
  async login(): Promise<void> {
    const { identifier, pdsHost, metrics } = this.#opts
    try {
      await this.#session.login({ identifier, password: this.#opts.password })
    } catch (err) {
      metrics.logins.inc({ status: 'error' })
      const status = err instanceof XRPCError ? err.status : 0
      const detail = describe(err)
      if (status === 400 || status === 401 || status === 403) {
        throw new OzoneAuthError(`cannot log in to ${pdsHost} as ${identifier}: ${detail}`, {
          cause: err,
        })
      }
      throw new OzoneUnavailableError(`cannot log in to ${pdsHost}: ${detail}`, { cause: err })
    }
    metrics.logins.inc({ status: 'ok' })
    this.#log.info(
      { did: this.#session.did, pds: String(this.#session.dispatchUrl) },
      'logged in to the PDS',
    )
  }

  /** One page of events, oldest first. */
  async queryEvents(params: QueryEventsParams): Promise<EventPage> {
    const t0 = performance.now()
    try {
      const page = await this.#query(params)
      this.#observe(t0, 'ok')
      return page
    } catch (err) {
      this.#observe(t0, (err as OzoneError).failure ?? 'unavailable')
      throw err
    }
  }

  #observe(t0: number, status: string): void {
    this.#opts.metrics.requests.inc({ status })
    this.#opts.metrics.requestDuration.observe({ status }, (performance.now() - t0) / 1000)
  }

  async #query(params: QueryEventsParams): Promise<EventPage> {
    const query = new URLSearchParams({ sortDirection: 'asc', limit: String(params.limit) })
    if (params.createdAfter !== undefined) query.set('createdAfter', params.createdAfter)
    if (params.cursor !== undefined) query.set('cursor', params.cursor)
    const path = `/xrpc/tools.ozone.moderation.queryEvents?${query.toString()}`
    // A refused token gets one fresh session (refresh, else login) and one more try; refused
    // again with fresh tokens, it is not the token: the account is not allowed in.
    for (let retried = false; ; retried = true) {
      let fresh = false
      if (!this.#session.hasSession) {
        await this.login()
        fresh = true
      }
      const refreshes = this.#refreshes
      let res: Response
      try {
        res = await this.#session.fetchHandler(path, {
          method: 'GET',
          headers: { 'atproto-proxy': this.#proxy, accept: 'application/json' },
        })
      } catch (err) {
        throw new OzoneUnavailableError(`cannot reach ${this.#opts.pdsHost}: ${describe(err)}`, {
          cause: err,
        })
      }
      if (res.ok) return parsePage(await readJson(res))
      const body = await readJson(res).catch(() => undefined)
      const { error, message } = errorBody(body)
      const tokenRefused = res.status === 401 || (error !== undefined && TOKEN_ERRORS.has(error))
      if (tokenRefused && !retried && !fresh && this.#refreshes === refreshes) {
        await this.#renew()
        continue
      }
      throw this.#failure(res.status, error, message)
    }
  }

  /** After a refused token: refresh the session; if the refresh token is refused too, drop it. */
  async #renew(): Promise<void> {
    if (!this.#session.hasSession) return
    try {
      await this.#session.refreshSession()
    } catch (err) {
      // @atproto/api drops the session when the PDS refused the refresh token; the next
      // attempt logs in. Otherwise the failure was transient.
      if (this.#session.hasSession) {
        throw new OzoneUnavailableError(`session refresh failed: ${describe(err)}`, {
          cause: err,
        })
      }
    }
  }

  #failure(status: number, error: string | undefined, message: string | undefined): OzoneError {
    const { labelerDid, pdsHost, identifier } = this.#opts
    const detail = `${message ?? 'no message'} (HTTP ${status}${error ? ` ${error}` : ''})`
    if (status === 429 || status >= 500) {
      return new OzoneUnavailableError(`queryEvents through ${pdsHost} failed: ${detail}`)
    }
    if (status === 401 || status === 403 || (error !== undefined && TOKEN_ERRORS.has(error))) {
      return new OzoneAuthError(
        `Ozone ${labelerDid} refused ${identifier} (is the account a moderator of it?): ${detail}`,
      )
    }
    if (status === 400 && message !== undefined && /proxy/i.test(message)) {
      return new OzoneLabelerError(
        `${pdsHost} cannot reach an Ozone at ${labelerDid}#atproto_labeler: ${detail}; check --labeler-did`,
      )
    }
    return new OzoneRequestError(`queryEvents through ${pdsHost} was rejected: ${detail}`)
  }
}

async function readJson(res: Response): Promise<unknown> {
  try {
    return await res.json()
  } catch (err) {
    throw new OzoneResponseError(`unreadable response (HTTP ${res.status}): ${describe(err)}`, {
      cause: err,
    })
  }
}

function errorBody(body: unknown): { error?: string; message?: string } {
  if (typeof body !== 'object' || body === null) return {}
  const { error, message } = body as Record<string, unknown>
  return {
    error: typeof error === 'string' ? error : undefined,
    message: typeof message === 'string' ? message : undefined,
  }
}

/**
 * `cannot connect: ECONNREFUSED host:port` for a network failure, else the messages of the error
 * and its causes, with the XRPC error name.
 */
function describe(err: unknown): string {
  const network = networkCause(err)
  if (network !== undefined) return `cannot connect: ${network}`
  // Each distinct message down the cause chain (fetch's own is only `fetch failed`).
  const messages: string[] = []
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 8; depth++) {
    const message = errorMessage(e)
    if (!messages.includes(message)) messages.push(message)
    e = e instanceof Error ? e.cause : undefined
  }
  const name = err instanceof XRPCError ? ` (${err.error})` : ''
  return `${messages.join(': ')}${name}`
}
