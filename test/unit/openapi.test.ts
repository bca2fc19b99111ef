// The OpenAPI document as the tools that read it need it: checked in and current (with the client types made from
// it), every operation named for good, its security stated, its answers described, and schemas that strict
// JSON Schema validators and client generators take as they are.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { OPENAPI_FILE, generateOpenApiText } from '../../src/http/openapi.js';
import { CLIENT_TYPES_FILE, generateClientTypes } from '../../scripts/openapi-client.js';

// Generated once, as `npm run openapi` does in a fresh process: zod's schema registries make a second
// generation in the same process differ in component order.
const generated = generateOpenApiText();

interface Operation {
  operationId?: string;
  security?: unknown[];
  'x-permission'?: string;
  parameters?: { in: string; name: string; schema: object }[];
  requestBody?: { content: Record<string, { schema: object }> };
  responses: Record<string, { description: string; headers?: Record<string, unknown>; content?: Record<string, { schema: object }> }>;
}
type Doc = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, object> } } & Record<string, any>;

const operations = (doc: Doc) =>
  Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));

/**
 * Every operation's name: generated clients' method names, so renaming one breaks every client built from an
 * older document. Add new ones; never change one.
 */
const OPERATION_IDS = [
  'getLiveness getReadiness listHosts listDomains getDomain pingAgent getAgentInfo syncAgent getNetworkInterfaces listAddresses',
  'getOsInfo getHostname getTimezone getLoggedInUsers getCpuStats getLoad getRoutes getFilesystems getDisks getDiskStats',
  'getTime setTime getVcpus updateVcpus getMemoryBlocks updateMemoryBlocks getMemoryBlockInfo headFile getFile putFile',
  'startExec getExecStatus setUserPassword listSshKeys addSshKeys removeSshKeys runAgentCommand requestPowerAction',
  'getFreezeStatus freezeFilesystems thawFilesystems trimFilesystems getMetrics streamEvents',
]
  .join(' ')
  .split(' ');

describe('the checked-in OpenAPI document', () => {
  it('is what the routes generate (run `npm run openapi` after changing a route)', async () => {
    expect(readFileSync(OPENAPI_FILE, 'utf8')).toBe(await generated);
  });

  it("and the client types openapi-typescript makes of it are current (the end-to-end client's)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qga-openapi-'));
    writeFileSync(join(dir, 'openapi.json'), await generated);
    generateClientTypes(join(dir, 'openapi.json'), join(dir, 'schema.d.ts'));
    expect(readFileSync(CLIENT_TYPES_FILE, 'utf8')).toBe(readFileSync(join(dir, 'schema.d.ts'), 'utf8'));
  }, 30_000);
});

describe('every operation', () => {
  it('has its own stable operationId, the same as ever', async () => {
    const ids = operations(JSON.parse(await generated)).map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual([...OPERATION_IDS].sort());
    for (const id of ids) expect(id).toMatch(/^[a-z][A-Za-z]+$/);
  });

  it('states its security: a bearer token for guarded ones, none (security: []) for public ones', async () => {
    for (const { path, method, op } of operations(JSON.parse(await generated))) {
      const what = `${method} ${path}`;
      expect(op['x-permission'], what).toBeTruthy();
      expect(op.security, what).toEqual(op['x-permission'] === 'public' ? [] : [{ bearerToken: [] }]);
    }
  });

  it('describes each of its answers, and every problem answer is problem+json', async () => {
    for (const { path, method, op } of operations(JSON.parse(await generated))) {
      for (const [status, r] of Object.entries(op.responses)) {
        const what = `${method} ${path} ${status}`;
        expect(r.description, what).not.toBe('Default Response');
        expect(r.description.length, what).toBeGreaterThan(5);
        if (Number(status) >= 400) expect(Object.keys(r.content ?? {}), what).toContain('application/problem+json');
      }
    }
  });

  it('documents the file routes as HTTP clients use them: Range, Content-Range, Accept-Ranges, Content-Length, HEAD', async () => {
    const item = JSON.parse(await generated).paths['/domains/{domain}/files/{path}'] as Record<string, Operation>;
    expect(Object.keys(item).sort()).toEqual(['get', 'head', 'put']);
    expect(item.get!.parameters!.find((p) => p.in === 'header')?.name).toBe('range');
    expect(Object.keys(item.get!.responses['206']!.headers!).sort()).toEqual(['Accept-Ranges', 'Content-Length', 'Content-Range']);
    expect(Object.keys(item.get!.responses['200']!.headers!).sort()).toEqual(['Accept-Ranges', 'Content-Length']);
    expect(item.head!.responses['200']).toMatchObject({ headers: { 'Content-Length': {}, 'Accept-Ranges': {} } });
    expect(item.head!.responses['200']!.content).toBeUndefined();
    expect(Object.keys(item.put!.requestBody!.content)).toEqual(['application/octet-stream']);
  });
});

describe('its schemas', () => {
  /** Every schema object in the document, with where it is. */
  const schemasOf = (doc: Doc) => [
    ...Object.entries(doc.components.schemas).map(([name, s]) => ({ where: `#/components/schemas/${name}`, schema: s })),
    ...operations(doc).flatMap(({ path, method, op }) => [
      ...(op.parameters ?? []).map((p) => ({ where: `${method} ${path} ${p.in} ${p.name}`, schema: p.schema })),
      ...Object.values(op.requestBody?.content ?? {}).map((c) => ({ where: `${method} ${path} body`, schema: c.schema })),
      ...Object.entries(op.responses).flatMap(([status, r]) =>
        Object.values(r.content ?? {}).map((c) => ({ where: `${method} ${path} ${status}`, schema: c.schema })),
      ),
    ]),
  ];

  it('compile in a strict JSON Schema 2020-12 validator (no unknown keyword, no custom format)', async () => {
    const doc = JSON.parse(await generated) as Doc;
    // strict: an unknown keyword (3.0's `example`, a vendor keyword) or format (base64, uint64, binary) is an error.
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats.default(ajv);
    const asDefs = (s: object) => JSON.parse(JSON.stringify(s).replaceAll('"#/components/schemas/', '"doc#/$defs/'));
    ajv.addSchema({ $id: 'doc', $defs: asDefs(doc.components.schemas) });
    for (const { where, schema } of schemasOf(doc)) expect(() => ajv.compile(asDefs(schema)), where).not.toThrow();
  });

  it('carry no `default` (a generated client would require the field) and say the default in the description', async () => {
    const text = await generated;
    expect(text).not.toMatch(/"default":/);
    const exec = JSON.parse(text).components.schemas.ExecStartInput;
    expect(exec.required).toEqual(['path']);
    expect(exec.properties.captureOutput.description).toMatch(/Default: true\.$/);
  });

  it('give examples as 3.1 does (`examples`), and base64 as contentEncoding', async () => {
    const text = await generated;
    expect(text).not.toMatch(/"example":/);
    expect(text).toMatch(/"examples": \[/);
    expect(text).toMatch(/"contentEncoding": "base64"/);
  });
});
