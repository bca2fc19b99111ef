// Bad inputs for the fuzz test (test/unit/fuzz.test.ts), derived from the OpenAPI document: for each operation,
// requests whose path parameters, query parameters or JSON body properties are replaced, one at a time, by values
// the schema refuses or that are known traps (wrong types, 1 MiB strings, odd Unicode, path tricks, enormous
// numbers, JSON nested 100,000 deep), plus malformed JSON and wrong content types. A seeded generator adds random strings so that a failing
// run can be reproduced exactly.

export interface FuzzRequest {
  /** What was changed, for failure messages. */
  what: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

interface Schema {
  type?: string | string[];
  $ref?: string;
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  example?: unknown;
  [k: string]: unknown;
}

interface Parameter {
  in: 'path' | 'query' | 'header';
  name: string;
  required?: boolean;
  schema: Schema;
}

interface Operation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
}

export interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
}

/** mulberry32: a tiny PRNG, so the run is the same every time for a given seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MIB = 1 << 20;
export const HUGE = 'A'.repeat(MIB);

// Strings that have broken parsers before: control characters, NUL, lone surrogates, bidi overrides, zero-width
// joiners, emoji, and path traversal in its many spellings.
const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\u0001\u001f\u007f',
  '\r\n',
  '\uD800',
  'x\uDC00y',
  '\u202Eevil\u202C',
  'a\u200Db\u200Bc\uFEFF',
  '👨‍👩‍👧‍👦',
  '..',
  '../../etc/passwd',
  '/etc/shadow',
  '//',
  'a\\..\\b',
  '%00',
  '%2e%2e',
  'C:\\Windows',
  '$(reboot)',
  '__proto__',
];

/** Path segments already URL-encoded (some deliberately invalid: lone surrogates, overlong and raw bytes). */
const RAW_SEGMENTS = [
  '',
  '..',
  '.',
  '%2e%2e',
  '%2E%2E%2F%2E%2E',
  '%00',
  'a%00b',
  '%',
  '%zz',
  '%ED%A0%80', // a lone surrogate, as CESU-8
  '%C0%AE%C0%AE', // overlong '..'
  '%FF%FE',
  '%E2%80%AE', // RTL override
  '%E2%80%8D', // zero-width joiner
  '%F0%9F%98%80', // emoji
  '%0A',
  '%7F',
  '%5C..%5C', // \..\
  '..%2F..%2Fetc%2Fpasswd',
  '%2F%2F',
  '\\',
  '-1',
  '1.5',
  '1e308',
  '9007199254740993',
  '2147483648',
  '0x10',
  'NaN',
  'Infinity',
  'null',
  'true',
  '[]',
  '{}',
];

/** Query values (URL-encoded), none of them a valid small positive integer. */
const RAW_QUERY_VALUES = [
  '',
  'abc',
  '-1',
  '0',
  '1.5',
  '1e308',
  '-1e308',
  '9007199254740993',
  '120001',
  '999999999999999999999999',
  'NaN',
  'Infinity',
  'true',
  'null',
  '%00',
  '%ED%A0%80',
  '%E2%80%AE1',
  '%2e%2e',
  '0x0',
  '[1]',
  '{}',
];

/** JSON values of every type, none of them sensible for most properties. */
const JSON_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  -0.5,
  1e308,
  -1e308,
  2 ** 53 + 1,
  'str',
  [],
  [null],
  [1, 'a', {}],
  {},
  { nested: { deeper: [] } },
  ...ODD_STRINGS,
];

/** Raw JSON literals JSON.stringify cannot produce: numbers that overflow to Infinity, or lose all precision. */
const RAW_JSON_VALUES = ['1e999', '-1e999', '123456789012345678901234567890', '-0', '0.0000000000000000000000001'];

const MALFORMED_BODIES = [
  '',
  '{',
  '{"a":',
  '}',
  '{"a":1}}',
  "{'a':1}",
  '{"a":1,}',
  '\u0000',
  '\uFEFF{}',
  'null',
  '[]',
  '"string"',
  '42',
  'true',
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
  '['.repeat(5000) + ']'.repeat(5000),
  `{"x":"${HUGE}"}`,
  '{"a":"\\ud800"}',
  '{"a":"\\u0000"}',
];

/**
 * JSON nested far deeper than any route needs, 1,000 and 100,000 levels: arrays, objects, and an object holding
 * arrays (which record-typed properties, such as a raw command's arguments, accept at the first level). Whatever
 * recurses over a parsed body (zod, JSON.stringify, the audit) overflowed the stack on these: a 500.
 */
export const NESTED_JSON: { what: string; text: string }[] = [1_000, 100_000].flatMap((depth) => [
  { what: `arrays ${depth} deep`, text: '['.repeat(depth) + ']'.repeat(depth) },
  { what: `objects ${depth} deep`, text: `${'{"a":'.repeat(depth)}0${'}'.repeat(depth)}` },
  { what: `an object holding arrays ${depth} deep`, text: `{"a":${'['.repeat(depth)}${']'.repeat(depth)}}` },
]);

const WRONG_CONTENT_TYPES = [
  'text/plain',
  'application/xml',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'application/json; charset=utf-16',
  'application/jsonx',
  '',
  '\u0000',
];

/** Sample valid path parameters: what the fuzz domain and guest actually have. */
export const SAMPLE_PARAMS: Record<string, string> = { domain: 'web1', pid: '1000', user: 'root', path: 'etc%2Fhostname' };

function resolve(doc: OpenApiDoc, s: Schema): Schema {
  if (s.$ref) {
    const name = s.$ref.replace('#/components/schemas/', '');
    return resolve(doc, doc.components?.schemas?.[name] ?? {});
  }
  return s;
}

/** Object branches of a body schema (anyOf with null or several shapes), $refs resolved. */
function objectBranches(doc: OpenApiDoc, s: Schema): Schema[] {
  const r = resolve(doc, s);
  if (r.anyOf) return r.anyOf.flatMap((b) => objectBranches(doc, b));
  return r.type === 'object' || r.properties ? [r] : [];
}

function randomOddString(rand: () => number): string {
  const pool = [
    0x0, 0x1, 0x1f, 0x7f, 0x85, 0xa0, 0x2028, 0x202e, 0x200d, 0xfeff, 0xd800, 0xdfff, 0xfffd, 0x2e, 0x2f, 0x5c, 0x25, 0x3d, 0x22, 0x27,
    0x24, 0x1f600,
  ];
  const n = 1 + Math.floor(rand() * 48);
  let s = '';
  for (let i = 0; i < n; i++) {
    const cp = rand() < 0.3 ? 0x20 + Math.floor(rand() * 95) : pool[Math.floor(rand() * pool.length)]!;
    s += cp >= 0xd800 && cp <= 0xdfff ? String.fromCharCode(cp) : String.fromCodePoint(cp);
  }
  return s;
}

/** A JSON text where `prop` of `base` holds the raw JSON literal `raw`. */
function withRaw(base: Record<string, unknown>, prop: string, raw: string): string {
  const rest = { ...base };
  delete rest[prop];
  const inner = JSON.stringify(rest).slice(1, -1);
  return `{${inner}${inner ? ',' : ''}${JSON.stringify(prop)}:${raw}}`;
}

/** Every bad request for every operation of `doc`. `randomPerOperation` extra seeded random requests each. */
export function fuzzRequests(doc: OpenApiDoc, seed: number, randomPerOperation = 8): FuzzRequest[] {
  const rand = prng(seed);
  const out: FuzzRequest[] = [];
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(item)) {
      const method = m.toUpperCase();
      const params = op.parameters ?? [];
      const pathParams = params.filter((p) => p.in === 'path');
      const queryParams = params.filter((p) => p.in === 'query');
      const contentTypes = Object.keys(op.requestBody?.content ?? {});
      const jsonSchema = op.requestBody?.content['application/json']?.schema;
      const isBinary = contentTypes.includes('application/octet-stream');
      const branches = jsonSchema ? objectBranches(doc, jsonSchema) : [];
      const base = (branches.find((b) => b.example !== undefined)?.example as Record<string, unknown> | undefined) ?? {};
      const baseBody = jsonSchema ? JSON.stringify(base) : isBinary ? Buffer.from('hello') : undefined;
      const baseHeaders: Record<string, string> = jsonSchema
        ? { 'content-type': 'application/json' }
        : isBinary
          ? { 'content-type': 'application/octet-stream' }
          : {};

      const url = (over: Record<string, string> = {}, query = '') =>
        template.replace(/\{(\w+)\}/g, (_, p: string) => over[p] ?? SAMPLE_PARAMS[p] ?? 'x') + (query ? `?${query}` : '');
      const add = (what: string, r: Partial<FuzzRequest>) =>
        out.push({
          what: `${method} ${template}: ${what}`,
          method,
          url: r.url ?? url(),
          headers: r.headers ?? baseHeaders,
          payload: 'payload' in r ? r.payload : baseBody,
        });

      for (const p of pathParams) {
        for (const seg of RAW_SEGMENTS) add(`path ${p.name}=${seg}`, { url: url({ [p.name]: seg }) });
        for (const s of ODD_STRINGS) add(`path ${p.name}=${JSON.stringify(s)}`, { url: url({ [p.name]: encodeSegment(s) }) });
        add(`path ${p.name}=<1 MiB>`, { url: url({ [p.name]: HUGE }) });
        add(`path ${p.name}=<2 KiB>`, { url: url({ [p.name]: 'b'.repeat(2049) }) });
      }
      if (template.includes('{path}')) {
        // The file path is the rest of the URL: traversal spelled out over several segments.
        for (const tail of [
          '../../etc/shadow',
          'etc/../../root',
          './/etc//hostname/',
          '%2e%2e/%2e%2e/etc',
          'etc/hostname%00.txt',
          'etc\\..\\..\\x',
          'a/%00/b',
        ])
          add(`path tail ${tail}`, { url: url({ path: tail }) });
      }
      for (const q of queryParams) {
        const values = q.schema.enum ? [...RAW_QUERY_VALUES, 'TRUNCATE', 'append%00', 'truncate,append'] : RAW_QUERY_VALUES;
        for (const v of values) add(`query ${q.name}=${v}`, { url: url({}, `${q.name}=${v}`) });
        add(`query ${q.name} twice`, { url: url({}, `${q.name}=x&${q.name}=y`) });
        add(`query ${q.name}[]`, { url: url({}, `${q.name}[]=x&${q.name}[a]=y`) });
        add(`query ${q.name}=<1 MiB>`, { url: url({}, `${q.name}=${HUGE}`) });
      }
      if (jsonSchema) {
        const props = [...new Set(branches.flatMap((b) => Object.keys(b.properties ?? {})))];
        for (const prop of props) {
          for (const v of [...JSON_VALUES, HUGE, randomOddString(rand), [HUGE], Array.from({ length: 70_000 }, () => 'x')])
            add(`body ${prop}=${short(v)}`, { payload: JSON.stringify({ ...base, [prop]: v }) });
          for (const raw of RAW_JSON_VALUES) add(`body ${prop}=${raw}`, { payload: withRaw(base, prop, raw) });
          for (const n of NESTED_JSON) add(`body ${prop}=nested ${n.what}`, { payload: withRaw(base, prop, n.text) });
        }
        for (const n of NESTED_JSON) add(`body nested ${n.what}`, { payload: n.text });
        for (const b of branches)
          for (const req of b.required ?? []) {
            const missing = { ...base };
            delete missing[req];
            add(`body without ${req}`, { payload: JSON.stringify(missing) });
          }
        add('body with an extra property', { payload: JSON.stringify({ ...base, extra: 1, '\u0000': 'x' }) });
        for (const body of MALFORMED_BODIES) add(`malformed body ${short(body)}`, { payload: body });
        for (const ct of WRONG_CONTENT_TYPES) add(`content-type ${JSON.stringify(ct)}`, { headers: ct ? { 'content-type': ct } : {} });
        add('no body', { payload: undefined });
      }
      if (isBinary)
        for (const ct of ['application/json', 'text/plain', 'multipart/form-data; boundary=x'])
          add(`content-type ${ct}`, { headers: { 'content-type': ct } });
      if (!jsonSchema && !isBinary && method !== 'GET')
        add('unexpected JSON body', { headers: { 'content-type': 'application/json' }, payload: '{' });

      // Seeded random mixes: a random odd string in a random place, and several query parameters at once.
      for (let i = 0; i < randomPerOperation; i++) {
        const s = randomOddString(rand);
        const target = rand();
        if (pathParams.length && target < 0.4) {
          const p = pathParams[Math.floor(rand() * pathParams.length)]!;
          add(`random path ${p.name}=${JSON.stringify(s)}`, { url: url({ [p.name]: encodeSegment(s) }) });
        } else if (queryParams.length && target < 0.7) {
          const qs = queryParams.map((q) => `${q.name}=${encodeSegment(randomOddString(rand))}`).join('&');
          add(`random query ${qs}`, { url: url({}, qs) });
        } else if (jsonSchema) {
          const props = Object.keys(branches[0]?.properties ?? {});
          const body: Record<string, unknown> = { ...base };
          for (const p of props) if (rand() < 0.7) body[p] = rand() < 0.5 ? s : JSON_VALUES[Math.floor(rand() * JSON_VALUES.length)];
          add(`random body ${short(body)}`, { payload: JSON.stringify(body) });
        } else {
          add(`random unknown query ${JSON.stringify(s)}`, { url: url({}, `${encodeSegment(s)}=${encodeSegment(s)}`) });
        }
      }
    }
  }
  return out;
}

/** encodeURIComponent, but lone surrogates (which it refuses) become their CESU-8 bytes. */
function encodeSegment(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch.length === 1 && c >= 0xd800 && c <= 0xdfff)
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    else out += encodeURIComponent(ch);
  }
  return out;
}

function short(v: unknown): string {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return s.length > 60 ? `${JSON.stringify(s.slice(0, 40))}...(${s.length} chars)` : JSON.stringify(s);
}
