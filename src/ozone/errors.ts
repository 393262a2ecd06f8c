import { AtKafkaError } from '../errors.ts'

/** Why an Ozone request failed; also the `status` label of `atkafka_ozone_requests`. */
export type OzoneFailure = 'auth' | 'labeler' | 'request' | 'unavailable' | 'response'

/** Base of the Ozone mode's errors. */
export class OzoneError extends AtKafkaError {
  override name = 'OzoneError'
  readonly failure: OzoneFailure

  constructor(
    failure: OzoneFailure,
    message: string,
    opts: { cause?: unknown; retryable: boolean },
  ) {
    super(message, opts)
    this.failure = failure
  }
}

/** The PDS refused the credentials, or Ozone refused the account (not a moderator). */
export class OzoneAuthError extends OzoneError {
  override name = 'OzoneAuthError'
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('auth', message, { ...opts, retryable: false })
  }
}

/** The PDS cannot proxy to `<labeler-did>#atproto_labeler` (unknown DID, no labeler service). */
export class OzoneLabelerError extends OzoneError {
  override name = 'OzoneLabelerError'
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('labeler', message, { ...opts, retryable: false })
  }
}

/** Ozone or the PDS rejected the request itself (a 4xx other than authentication). */
export class OzoneRequestError extends OzoneError {
  override name = 'OzoneRequestError'
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('request', message, { ...opts, retryable: false })
  }
}

/** Network error, timeout, 5xx or rate limit: trying again later may work. */
export class OzoneUnavailableError extends OzoneError {
  override name = 'OzoneUnavailableError'
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('unavailable', message, { ...opts, retryable: true })
  }
}

/** A response that is not a valid queryEvents page. */
export class OzoneResponseError extends OzoneError {
  override name = 'OzoneResponseError'
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('response', message, { ...opts, retryable: true })
  }
}
