// Reading and writing the agent's JSON without rounding 64-bit integers (src/agent/core/agent-json.ts), and the
// kernel's u32 behind qemu-ga's sign-extended route members (src/agent/core/reply-integers.ts).
import { describe, expect, it } from 'vitest';
import { isExactInteger, parseAgentJson, stringifyJson } from '../../src/agent/transports/agent-json.js';
import { agentInt64, agentUint64, kernelU32 } from '../../src/agent/commands/reply-integers.js';

describe('parseAgentJson', () => {
  it('keeps safe integers and fractions as numbers, makes larger integers exact bigints', () => {
    expect(parseAgentJson('{"a":1,"b":-2,"c":0.56201171875,"d":1795824062.5,"e":9007199254740991}')).toEqual({
      a: 1,
      b: -2,
      c: 0.56201171875,
      d: 1795824062.5,
      e: 9007199254740991,
    });
    expect(parseAgentJson('{"return":9007199254740993}')).toEqual({ return: 9007199254740993n });
    expect(parseAgentJson('[18446744073709551615,-9223372036854775808,1e300,12345678901234567.5]')).toEqual([
      18446744073709551615n,
      -9223372036854775808n,
      1e300,
      // The double nearest 12345678901234567.5 (a literal with that many digits would lose precision in this file too).
      Number('12345678901234567.5'),
    ]);
  });

  it('reads what JSON.parse reads, either way it takes (a 16-digit run inside a string sends it the slow way)', () => {
    const text = '{"buf-b64":"MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=","count":20,"eof":false,"note":"1234567890123456","x":[1,{"y":null,"z":true}]}';
    expect(parseAgentJson(text)).toEqual(JSON.parse(text));
    expect(parseAgentJson(text.replace('1234567890123456', 'short'))).toEqual(JSON.parse(text.replace('1234567890123456', 'short')));
  });

  it('throws on what is not JSON, and keeps __proto__ an own property as JSON.parse does', () => {
    expect(() => parseAgentJson('{"return": 12345678901234567')).toThrow(SyntaxError);
    expect(() => parseAgentJson('not json')).toThrow(SyntaxError);
    const v = parseAgentJson('{"__proto__":{"polluted":12345678901234567890}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('stringifyJson', () => {
  it('writes bigints as the exact integers, everything else as JSON.stringify does', () => {
    expect(stringifyJson({ execute: 'guest-set-time', arguments: { time: 1893452400000000001n } })).toBe(
      '{"execute":"guest-set-time","arguments":{"time":1893452400000000001}}',
    );
    const plain = { a: [1, 'x', null, true], d: new Date(0), u: undefined, n: { m: 2.5 } };
    expect(stringifyJson(plain)).toBe(JSON.stringify(plain));
    expect(stringifyJson({ d: new Date(0), big: 2n ** 64n - 1n, u: undefined })).toBe(
      '{"d":"1970-01-01T00:00:00.000Z","big":18446744073709551615}',
    );
  });

  it('round-trips through parseAgentJson', () => {
    const v = { flags: 18446744071564165121n, metric: -1, load: 0.125, name: 'lo' };
    expect(parseAgentJson(stringifyJson(v))).toEqual(v);
  });
});

describe('integers in reply schemas', () => {
  it('agentUint64 takes non-negative numbers and bigints; agentInt64 any integer; neither a fraction', () => {
    expect(agentUint64().safeParse(18446744073709551615n).success).toBe(true);
    expect(agentUint64().safeParse(5).success).toBe(true);
    expect(agentUint64().safeParse(-1).success).toBe(false);
    expect(agentUint64().safeParse(1.5).success).toBe(false);
    expect(agentInt64().safeParse(-9223372036854775808n).success).toBe(true);
    expect(agentInt64().safeParse('1').success).toBe(false);
    expect(isExactInteger(2 ** 53)).toBe(false);
    expect(isExactInteger(2n ** 53n)).toBe(true);
  });

  it.each([
    [3, 3],
    [0x80200001, 0x80200001],
    [-1, 4294967295],
    [-2147483648, 2147483648],
    [18446744071564165121n, 0x80200001],
    [18446744073709551615n, 4294967295],
    // Not a sign-extended 32-bit value: passed on as it came.
    [4294967296, 4294967296],
    [-2147483649, -2147483649],
    [18446744069414584320n, 18446744069414584320n],
  ] as const)('kernelU32(%s) = %s', (input, expected) => {
    expect(kernelU32(input)).toBe(expected);
  });
});
