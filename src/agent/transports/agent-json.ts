// The agent's JSON, read and written without losing 64-bit integers. qemu-ga prints its int64/uint64 members as
// plain JSON numbers (guest-get-time's nanoseconds, qemu-ga 10.0's sign-extended IPv6 route flags such as
// 18446744071564165121, a directory's seek position 9223372036854775807), and JSON.parse would round every one
// of them above 2^53 to the nearest double. libvirt passes them on as the agent wrote them.
//
// Integers a double holds exactly stay numbers; larger ones become bigints, which the reply schemas
// (../commands/reply-integers.ts) accept where the agent may send them and refuse where it may not. Fractions and exponents
// (load averages, login times) are doubles in qemu-ga too: parsed as JSON.parse would.
import { isInteger, parse as losslessParse, stringify as losslessStringify } from 'lossless-json';

/** An integer from the agent: a number when it is a safe integer, else a bigint. */
export type ExactInteger = number | bigint;

/** A run of 16 digits: the shortest that can spell an integer above 2^53 (9007199254740992). */
const LONG_DIGIT_RUN = /\d{16}/;

function parseNumber(text: string): number | bigint {
  if (isInteger(text)) {
    const n = Number(text);
    if (Number.isSafeInteger(n)) return n;
    return BigInt(text);
  }
  return Number(text);
}

/**
 * JSON.parse, but integers beyond 2^53 come out as exact bigints. Most replies hold no run of 16 digits and
 * take the native parser (a 2 MiB file chunk should not go through a parser written in JavaScript); the
 * others, and the rare base64 chunk that happens to hold one, take lossless-json's. Throws SyntaxError.
 */
export function parseAgentJson(text: string): unknown {
  if (!LONG_DIGIT_RUN.test(text)) return JSON.parse(text);
  // lossless-json refuses duplicate keys with different values (JSON.parse keeps the last): qemu-ga never sends
  // them, and a reply that has them is malformed, which the caller reports as such.
  return losslessParse(text, null, parseNumber);
}

/** JSON.stringify, but bigints are written as the exact integers they are (agent arguments, HTTP answers). */
export function stringifyJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    // Only a bigint makes JSON.stringify throw here; anything else (a cycle) throws again below.
    if (!(err instanceof TypeError) || !/BigInt/i.test(err.message)) throw err;
    return losslessStringify(value) as string;
  }
}

/** Whether a value parsed from the agent is an integer (a safe number or a bigint). */
export function isExactInteger(value: unknown): value is ExactInteger {
  return typeof value === 'bigint' || Number.isSafeInteger(value);
}
