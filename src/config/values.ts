import { ConfigError } from '../errors.ts'
import type { OptionValue, Resolved } from './resolve.ts'

/** Typed accessors over resolved option values. */
export class Values {
  readonly #values: Resolved
  constructor(values: Resolved) {
    this.#values = values
  }
  #get(flag: string): OptionValue | undefined {
    return this.#values.get(flag)
  }
  str(flag: string): string | undefined {
    const v = this.#get(flag)
    return typeof v === 'string' ? v : undefined
  }
  reqStr(flag: string): string {
    const v = this.str(flag)
    if (v === undefined) throw new ConfigError(`missing value for --${flag}`)
    return v
  }
  list(flag: string): string[] {
    const v = this.#get(flag)
    return Array.isArray(v) ? v : []
  }
  int(flag: string): number | undefined {
    const v = this.#get(flag)
    return typeof v === 'number' ? v : undefined
  }
  reqInt(flag: string): number {
    const v = this.int(flag)
    if (v === undefined) throw new ConfigError(`missing value for --${flag}`)
    return v
  }
  bool(flag: string): boolean {
    return this.#get(flag) === true
  }
}
