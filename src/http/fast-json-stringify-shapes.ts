// Which response schemas fast-json-stringify writes exactly as the schema means them (serializer.ts), reduced to
// the keywords that steer its generated code. Given a route's JSON Schema (zod's, draft 2020-12), the answer is a
// self-contained schema (references inlined) of objects, arrays, records and primitives, or null when any part
// of it is outside what the generated code writes faithfully:
// - a value of any type ({}, z.unknown()): fast-json-stringify falls back to JSON.stringify, which throws on bigints;
// - a union with more than one object or array branch: it would run Ajv on every answer to choose one;
// - tuples, pattern properties, allOf, recursive references: not worth the risk for the answers we have.
// Everything else it drops (descriptions, examples, formats, bounds, patterns): they do not change what is written.

type Json = Record<string, unknown>;
const PRIMITIVES = new Set(['string', 'number', 'integer', 'boolean', 'null']);

/** The schema fast-json-stringify should compile for this JSON Schema, or null for the checked path. */
export function fastSerializableSchema(schema: unknown): Json | null {
  const root = schema as Json;
  const defs = (root?.$defs ?? {}) as Record<string, unknown>;
  return reduce(schema, defs, new Set());
}

function reduce(node: unknown, defs: Record<string, unknown>, resolving: Set<string>): Json | null {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return null;
  const s = node as Json;
  if (typeof s.$ref === 'string') return reduceRef(s.$ref, defs, resolving);
  if (s.allOf || s.not || s.if || s.prefixItems || s.patternProperties) return null;
  const alternatives = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (alternatives) return reduceUnion(alternatives, defs, resolving);
  const types = typeList(s);
  if (!types) return null;
  if (types.length > 1) return types.every((t) => PRIMITIVES.has(t)) ? { type: types } : null;
  const type = types[0]!;
  if (PRIMITIVES.has(type)) return { type };
  if (type === 'array') {
    const items = reduce(s.items, defs, resolving);
    return items ? { type, items } : null;
  }
  if (type === 'object') return reduceObject(s, defs, resolving);
  return null;
}

function reduceRef(ref: string, defs: Record<string, unknown>, resolving: Set<string>): Json | null {
  const name = /^#\/\$defs\/([^/]+)$/.exec(ref)?.[1];
  if (!name || !(name in defs) || resolving.has(name)) return null;
  resolving.add(name);
  const reduced = reduce(defs[name], defs, resolving);
  resolving.delete(name);
  return reduced;
}

function reduceObject(s: Json, defs: Record<string, unknown>, resolving: Set<string>): Json | null {
  const properties: Json = {};
  for (const [key, value] of Object.entries((s.properties ?? {}) as Json)) {
    const reduced = reduce(value, defs, resolving);
    if (!reduced) return null;
    properties[key] = reduced;
  }
  const out: Json = { type: 'object', properties };
  if (Array.isArray(s.required) && s.required.length) out.required = [...s.required];
  const extra = s.additionalProperties;
  // A record (z.record) has its values' schema here; a strict or stripping object has false or nothing.
  if (extra === undefined || extra === false) out.additionalProperties = false;
  else {
    const values = reduce(extra, defs, resolving);
    if (!values) return null;
    out.additionalProperties = values;
  }
  return out;
}

/**
 * A union of primitive types becomes one list of types (nullable fields are zod's anyOf [X, null]); one object or
 * array branch may join only null (a nullable object), which the generated code tells apart without Ajv.
 */
function reduceUnion(alternatives: unknown[], defs: Record<string, unknown>, resolving: Set<string>): Json | null {
  const reduced = alternatives.map((a) => reduce(a, defs, resolving));
  if (reduced.some((r) => r === null)) return null;
  const branches = reduced as Json[];
  const primitiveTypes = new Set<string>();
  const structured: Json[] = [];
  for (const branch of branches) {
    const types = Array.isArray(branch.type) ? (branch.type as string[]) : [branch.type as string];
    if (types.every((t) => PRIMITIVES.has(t))) for (const t of types) primitiveTypes.add(t);
    else structured.push(branch);
  }
  if (structured.length === 0) return { type: [...primitiveTypes] };
  if (structured.length === 1 && [...primitiveTypes].every((t) => t === 'null')) {
    const branch = structured[0]!;
    return primitiveTypes.size ? { ...branch, type: [branch.type as string, 'null'] } : branch;
  }
  return null;
}

/** The schema's types: its `type`, or what its enum or const values are (zod writes them with a type; be sure). */
function typeList(s: Json): string[] | null {
  if (typeof s.type === 'string') return [s.type];
  if (Array.isArray(s.type) && s.type.every((t) => typeof t === 'string')) return s.type as string[];
  const values = s.enum ?? (s.const !== undefined ? [s.const] : undefined);
  if (!Array.isArray(values) || values.length === 0) return null;
  const types = new Set(values.map((v) => (v === null ? 'null' : typeof v)));
  if ([...types].every((t) => t === 'string' || t === 'boolean' || t === 'null')) return [...types];
  return null;
}
