// The routes' response serializer. Each route's zod schema is turned once into JSON Schema and compiled by
// fast-json-stringify (which Fastify itself uses): an answer is written by code generated for its shape, without
// checking it against the schema on the way out (zod's check and JSON.stringify were most of a cached answer's
// serialisation cost). Bigints (exact 64-bit integers from the agent, exact-integer.ts) come out as JSON integers.
//
// Shapes the generated code would write differently from what the schema means take the checked path instead:
// zod encodes the answer (checking it) and stringifyJson writes it. Those are values of any type (z.unknown(),
// the raw endpoint's replies), unions of objects, and anything fast-json-stringify would need Ajv to choose a
// branch for at run time (fast-json-stringify-shapes.ts decides).
//
// With openapi.checkAnswers (on in the tests), every answer takes both paths and they must write the same JSON
// value (members in another order, otherwise byte for byte): the whole test suite then checks that the generated
// code writes exactly what the schema says.
import { isDeepStrictEqual } from 'node:util';
import type { FastifyInstance } from 'fastify';
import fastJsonStringify from 'fast-json-stringify';
import { ResponseSerializationError } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { $ZodType, safeEncode } from 'zod/v4/core';
import { parseAgentJson, stringifyJson } from '../agent/transports/agent-json.js';
import { fastSerializableSchema } from './fast-json-stringify-shapes.js';

type SerializerCompiler = Parameters<FastifyInstance['setSerializerCompiler']>[0];
type Serialize = (data: unknown) => string;

export function responseSerializerCompiler(checkAnswers: boolean): SerializerCompiler {
  return ({ schema, method, url }) => {
    const zodSchema = resolveSchema(schema);
    const checked: Serialize = (data) => {
      const result = safeEncode(zodSchema, data);
      if (result.error) throw new ResponseSerializationError(method, url, { cause: result.error });
      return stringifyJson(result.data);
    };
    // Compiled at the first answer, not at start-up: every route's every status compiled at once added half a
    // second to start-up, for answers most routes never give.
    let serialize: Serialize | undefined;
    return (data) => {
      serialize ??= choose(compiledFor(zodSchema), checked, checkAnswers, method, url);
      return serialize(data);
    };
  };
}

function choose(fast: Serialize | null, checked: Serialize, checkAnswers: boolean, method: string, url: string): Serialize {
  if (!fast) return checked;
  if (!checkAnswers) return fast;
  return (data) => {
    const expected = checked(data);
    const written = fast(data);
    // The same JSON value: fast-json-stringify writes an object's required members before its optional ones.
    if (written !== expected && !isDeepStrictEqual(parseAgentJson(written), parseAgentJson(expected))) {
      // Where, not what: an answer may hold what must not reach a log (a program's output, a file's lines).
      let at = 0;
      while (at < written.length && written[at] === expected[at]) at++;
      const cause = new Error(
        `the compiled serializer and the schema disagree: ${written.length} against ${expected.length} bytes, first difference at byte ${at}`,
      );
      throw new ResponseSerializationError(method, url, { cause: cause as never });
    }
    return written;
  };
}

/** Schemas shared by several routes or statuses (the problem answers, a domain) are compiled once. */
const compiled = new WeakMap<$ZodType, Serialize | null>();

function compiledFor(zodSchema: $ZodType): Serialize | null {
  if (!compiled.has(zodSchema)) compiled.set(zodSchema, compileFast(zodSchema));
  return compiled.get(zodSchema)!;
}

/** fast-json-stringify's function for the schema, or null when the schema's shape needs the checked path. */
export function compileFast(zodSchema: $ZodType): Serialize | null {
  let jsonSchema: unknown;
  try {
    jsonSchema = z.toJSONSchema(zodSchema, { io: 'output', unrepresentable: 'any' });
  } catch {
    return null;
  }
  const shape = fastSerializableSchema(jsonSchema);
  return shape ? (fastJsonStringify(shape as unknown as Parameters<typeof fastJsonStringify>[0]) as Serialize) : null;
}

/** As the type provider takes it: the schema itself, or { properties: schema }. */
function resolveSchema(schema: unknown): $ZodType {
  if (schema instanceof $ZodType) return schema;
  const properties = (schema as { properties?: unknown } | null)?.properties;
  if (properties instanceof $ZodType) return properties;
  throw new Error('a route response schema is not a zod schema');
}
