// The routes' response serializer: fastify-type-provider-zod's (the route's zod schema checks and encodes the
// answer), but written with stringifyJson, so that bigints (exact 64-bit integers from the agent, exact-integer.ts)
// come out as JSON integers instead of making JSON.stringify throw.
import type { FastifyInstance } from 'fastify';
import { ResponseSerializationError } from 'fastify-type-provider-zod';
import { $ZodType, safeEncode } from 'zod/v4/core';
import { stringifyJson } from '../agent/transports/agent-json.js';

type SerializerCompiler = Parameters<FastifyInstance['setSerializerCompiler']>[0];

export const exactSerializerCompiler: SerializerCompiler = ({ schema, method, url }) => {
  const zodSchema = resolveSchema(schema);
  return (data) => {
    const result = safeEncode(zodSchema, data);
    if (result.error) throw new ResponseSerializationError(method, url, { cause: result.error });
    return stringifyJson(result.data);
  };
};

/** As the type provider takes it: the schema itself, or { properties: schema }. */
function resolveSchema(schema: unknown): $ZodType {
  if (schema instanceof $ZodType) return schema;
  const properties = (schema as { properties?: unknown } | null)?.properties;
  if (properties instanceof $ZodType) return properties;
  throw new Error('a route response schema is not a zod schema');
}
