import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'

const dir = join(import.meta.dirname, '..', '..', 'schema')
const load = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as object

const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false })
ajv.addSchema(load('event.schema.json'), 'event.schema.json')
ajv.addSchema(load('osprey-event.schema.json'), 'osprey-event.schema.json')
const event = ajv.getSchema('event.schema.json')!
const osprey = ajv.getSchema('osprey-event.schema.json')!
const headers = ajv.getSchema('event.schema.json#/$defs/kafkaHeaders')!

function check(validate: typeof event, value: unknown, what: string): void {
  if (!validate(value)) {
    throw new Error(
      `${what} does not match its schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value).slice(0, 500)}`,
    )
  }
}

/** Throws unless `value` matches schema/event.schema.json. */
export function validateEvent(value: unknown): void {
  check(event, value, 'event')
}

/** Throws unless `value` matches schema/osprey-event.schema.json. */
export function validateOspreyEvent(value: unknown): void {
  check(osprey, value, 'Osprey event')
}

/** Throws unless `value` (a message's headers) matches the kafkaHeaders of event.schema.json. */
export function validateHeaders(value: unknown): void {
  check(headers, value, 'Kafka headers')
}
