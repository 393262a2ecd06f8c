/** Multibase string forms of binary CIDs, as multiformats' `CID.toString()` writes them. */

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'
const BASE32_CODES = Uint8Array.from(BASE32, (c) => c.charCodeAt(0))
const B = 'b'.charCodeAt(0)

/** `b` + RFC 4648 base32, lower case, no padding: the string of a CIDv1. */
export function base32Multibase(bytes: Uint8Array): string {
  const out = new Uint8Array(1 + Math.ceil((bytes.length * 8) / 5))
  out[0] = B
  let o = 1
  let buffer = 0
  let bits = 0
  for (let i = 0; i < bytes.length; i++) {
    buffer = ((buffer << 8) | bytes[i]!) & 0xfff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out[o++] = BASE32_CODES[(buffer >>> bits) & 31]!
    }
  }
  if (bits > 0) out[o++] = BASE32_CODES[(buffer << (5 - bits)) & 31]!
  return Buffer.from(out.buffer, 0, o).toString('latin1')
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** Bitcoin base58 without a multibase prefix: the string of a CIDv0. */
export function base58btc(bytes: Uint8Array): string {
  let zeros = 0
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++
  const digits: number[] = []
  for (let i = zeros; i < bytes.length; i++) {
    let carry = bytes[i]!
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j]! << 8
      digits[j] = carry % 58
      carry = (carry / 58) | 0
    }
    while (carry > 0) {
      digits.push(carry % 58)
      carry = (carry / 58) | 0
    }
  }
  let out = '1'.repeat(zeros)
  for (let i = digits.length - 1; i >= 0; i--) out += BASE58[digits[i]!]
  return out
}
