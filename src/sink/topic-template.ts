import { ConfigError } from '../errors.ts'

/** Characters Kafka allows in a topic name; every other one becomes `_`. */
const ILLEGAL = /[^a-zA-Z0-9._-]/g
/** Longest topic name Kafka accepts. */
export const MAX_TOPIC_LENGTH = 249
const PLACEHOLDERS = ['kind', 'collection'] as const
type Placeholder = (typeof PLACEHOLDERS)[number]
/** Most rendered names remembered (a firehose has thousands of collections). */
const CACHE_LIMIT = 10_000

/**
 * A legal Kafka topic name from any text: characters outside `[a-zA-Z0-9._-]` become `_`, the
 * name is cut to 249 characters, and an empty name, `.` or `..` becomes `_`.
 */
export function sanitizeTopic(name: string): string {
  const s = name.replace(ILLEGAL, '_').slice(0, MAX_TOPIC_LENGTH)
  return s === '' || s === '.' || s === '..' ? '_' : s
}

/** Whether `name` is a legal Kafka topic name as it stands. */
export function isLegalTopic(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && sanitizeTopic(name) === name
}

type Part = string | { placeholder: Placeholder }

/**
 * `--output-topic`: one topic, or a template with `{kind}` and `{collection}` (the record's
 * collection on operations, the kind on every other event). Rendered names are sanitised with
 * {@link sanitizeTopic}.
 */
export class TopicTemplate {
  readonly source: string
  /** The one topic when the template has no placeholder. */
  readonly fixed: string | undefined
  readonly #parts: readonly Part[]
  readonly #cache = new Map<string, string>()

  private constructor(source: string, parts: readonly Part[]) {
    this.source = source
    this.#parts = parts
    const [first] = parts
    this.fixed = parts.length === 1 && typeof first === 'string' ? first : undefined
  }

  /**
   * Parse `text`; throws a {@link ConfigError} naming `what` for an unknown placeholder, a stray
   * brace, or a fixed part Kafka would refuse.
   */
  static parse(text: string, what = '--output-topic'): TopicTemplate {
    const parts: Part[] = []
    let literal = ''
    const re = /\{([^{}]*)\}/g
    let last = 0
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      literal += text.slice(last, m.index)
      const name = m[1]!
      if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
        throw new ConfigError(
          `invalid value "${text}" for ${what}: unknown placeholder {${name}} (known: {kind}, {collection})`,
        )
      }
      if (literal !== '') parts.push(literal)
      literal = ''
      parts.push({ placeholder: name as Placeholder })
      last = re.lastIndex
    }
    literal += text.slice(last)
    if (literal !== '') parts.push(literal)
    const fixed = parts.filter((p) => typeof p === 'string').join('')
    if (/[{}]/.test(fixed)) {
      throw new ConfigError(`invalid value "${text}" for ${what}: unmatched brace`)
    }
    const topicOnly = parts.every((p) => typeof p === 'string')
    if (
      (topicOnly && !isLegalTopic(fixed)) ||
      (!topicOnly && (fixed.replace(ILLEGAL, '') !== fixed || fixed.length > MAX_TOPIC_LENGTH)) ||
      text === ''
    ) {
      throw new ConfigError(
        `invalid value "${text}" for ${what}: expected a Kafka topic name (letters, digits, . _ -, at most ${MAX_TOPIC_LENGTH}), optionally with {kind} and {collection}`,
      )
    }
    return new TopicTemplate(text, parts)
  }

  /** The topic of an event of `kind` (with `collection` on operations). */
  render(kind: string, collection?: string): string {
    const fixed = this.fixed
    if (fixed !== undefined) return fixed
    const c = collection === undefined || collection === '' ? kind : collection
    const cacheKey = `${kind}\n${c}`
    let topic = this.#cache.get(cacheKey)
    if (topic === undefined) {
      const text = this.#parts
        .map((p) => (typeof p === 'string' ? p : p.placeholder === 'kind' ? kind : c))
        .join('')
      topic = sanitizeTopic(text)
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear()
      this.#cache.set(cacheKey, topic)
    }
    return topic
  }
}
