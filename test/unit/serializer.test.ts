// The compiled response serializer (src/http/serializer.ts): which shapes it takes, that it writes what zod's
// checked path writes, exact 64-bit integers included, and that openapi.checkAnswers catches a disagreement.
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { stringifyJson } from '../../src/agent/transports/agent-json.js';
import { exactInt64, exactUint64 } from '../../src/http/exact-integer.js';
import { fastSerializableSchema } from '../../src/http/fast-json-stringify-shapes.js';
import { compileFast, responseSerializerCompiler } from '../../src/http/serializer.js';
import { domainSchema } from '../../src/http/schemas.js';

const shapeOf = (schema: z.ZodType) => fastSerializableSchema(z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }));

function serializer(schema: z.ZodType, checkAnswers: boolean) {
  return responseSerializerCompiler(checkAnswers)({ schema, method: 'GET', url: '/test', httpStatus: '200' } as never) as (
    data: unknown,
  ) => string;
}

describe('the compiled response serializer', () => {
  it('writes what zod and JSON.stringify write, field order, nulls and escapes included', () => {
    const fast = compileFast(domainSchema)!;
    expect(fast).not.toBeNull();
    const body = {
      host: 'local',
      backend: 'libvirt',
      name: 'we"ird\u2028name\u0001',
      uuid: '8f1c3a52-1b5e-4c1a-9d7e-0a0000000001',
      id: null,
      state: 'shutoff',
      agentState: 'disconnected',
      agentChannel: null,
      notInTheSchema: 'dropped',
    };
    const { notInTheSchema: _, ...kept } = body;
    expect(fast(body)).toBe(JSON.stringify(kept));
    expect(fast({ ...kept, id: 7, agentChannel: true })).toBe(JSON.stringify({ ...kept, id: 7, agentChannel: true }));
  });

  it('writes exact 64-bit integers (bigints past 2^53) as plain digits, in objects, arrays and records', () => {
    const schema = z.object({
      total: exactUint64('bytes'),
      offsets: z.array(exactInt64()),
      byDisk: z.record(z.string(), exactUint64()),
      maybe: exactUint64().nullable(),
    });
    const data = { total: 18446744073709551615n, offsets: [-9223372036854775808n, 3], byDisk: { vda: 9007199254740993n }, maybe: null };
    const fast = compileFast(schema)!;
    expect(fast).not.toBeNull();
    expect(fast(data)).toBe(
      '{"total":18446744073709551615,"offsets":[-9223372036854775808,3],"byDisk":{"vda":9007199254740993},"maybe":null}',
    );
    expect(fast(data)).toBe(stringifyJson(data));
  });

  it('leaves to the checked path what the generated code would not write faithfully', () => {
    // Any value: fast-json-stringify would hand it to JSON.stringify, which throws on a bigint.
    expect(shapeOf(z.object({ reply: z.unknown() }))).toBeNull();
    expect(shapeOf(z.looseObject({ a: z.string() }))).toBeNull();
    // A union of objects: Ajv at run time to choose the branch.
    expect(shapeOf(z.union([z.object({ a: z.string() }), z.object({ b: z.number() })]))).toBeNull();
    expect(shapeOf(z.tuple([z.string(), z.number()]))).toBeNull();
    // Recursive: not inlined.
    const tree: z.ZodType = z.lazy(() => z.object({ children: z.array(tree) }));
    expect(shapeOf(tree)).toBeNull();
    // Whereas a primitive union and a nullable object are fine.
    expect(shapeOf(z.union([z.string(), z.number()]))).toEqual({ type: ['string', 'number'] });
    expect(shapeOf(z.object({ a: z.string() }).nullable())).toEqual({
      type: ['object', 'null'],
      properties: { a: { type: 'string' } },
      required: ['a'],
      additionalProperties: false,
    });
  });

  it('a schema it cannot compile is still written, checked by zod (a bigint inside an unknown value included)', () => {
    const write = serializer(z.object({ reply: z.unknown() }), false);
    expect(write({ reply: { seek: 9223372036854775807n } })).toBe('{"reply":{"seek":9223372036854775807}}');
    // A compiled one does not check, but it does not write a wrong type either: it throws (a 500, like zod's refusal).
    expect(() => serializer(z.object({ n: z.number() }), false)({ n: 'nope' })).toThrow(/cannot be converted to a number/);
    expect(() => serializer(z.object({ n: z.number() }), true)({ n: 'nope' })).toThrow(/Response doesn't match the schema/);
  });

  it('with checkAnswers, an answer the compiled code writes differently from zod is refused, not sent', () => {
    // zod trims on the way out (an overwrite, which JSON Schema cannot say); the compiled code writes what it got.
    const schema = z.object({ a: z.string().trim() });
    expect(serializer(schema, false)({ a: ' x ' })).toBe('{"a":" x "}');
    expect(() => serializer(schema, true)({ a: ' x ' })).toThrow(/Response doesn't match the schema/);
    expect(serializer(schema, true)({ a: 'x' })).toBe('{"a":"x"}');
  });
});
