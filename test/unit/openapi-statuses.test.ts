// Every status an operation can answer is one its OpenAPI document declares. Two ways: the statuses each operation
// must declare, derived here from what it is (its permission, whether it names a domain, talks to the agent, takes
// a body, is rate limited), independently of the gateway's own derivation (src/http/openapi-problems.ts); and
// requests that provoke them, against a running gateway (a fake libvirtd, tokens on, small limits), each answer's
// status looked up in the document the same gateway serves.
import { describe, expect, it } from 'vitest';
import { SCOPES } from '../../src/config/scopes.js';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import type { AgentHandler } from '../support/fake-libvirtd.js';
import { defaultAgentHandler } from '../support/fake-libvirtd/default-agent.js';
import { FakeGuestFiles } from '../support/fake-guest-files.js';
import { build, type Method, request } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';

interface Operation {
  operationId: string;
  'x-permission': string;
  parameters?: { in: string; name: string }[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
}
type Op = { path: string; method: Method; op: Operation };

const operationsOf = (doc: { paths: Record<string, Record<string, Operation>> }): Op[] =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ path, method: method.toUpperCase() as Method, op })),
  );

const tokens = { all: newToken(), narrow: newToken(), elsewhere: newToken() };
/** A scope the operation does not need: the narrow token has only that one. */
const otherScope = (permission: string) => (permission === 'read' ? 'exec' : 'read');

/** A gateway with tokens on; `narrowScope` is the only scope of the narrow token. */
async function gatewayFor(narrowScope: string, limits: object = { rateLimit: { max: 0 }, unauthenticated: { max: 0 } }) {
  // web1 answers; stuck answers too late for a short deadline; broken's agent answers every command with an error;
  // bare's has every command but guest-info, -ping and -sync disabled (qemu-ga --block-rpcs, as RHEL's blocks some).
  // The others have a file system with /tmp/probe.txt in it.
  const files = new FakeGuestFiles();
  files.files.set('/tmp/probe.txt', Buffer.from('probe'));
  const agent: AgentHandler = (domain, command, timeout) => {
    if (domain.name === 'stuck') return new Promise((r) => setTimeout(() => r({ return: {} }), 300));
    if (domain.name === 'broken') return { error: { class: 'GenericError', desc: 'the probe says no' } };
    // The probes' own program, /bin/true, shaped as qga/qapi-schema.json's GuestExec and GuestExecStatus.
    const args = command.arguments as { path?: string; pid?: number } | undefined;
    if (command.execute === 'guest-exec' && args?.path === '/bin/true') return { return: { pid: 4242 } };
    if (command.execute === 'guest-exec-status' && args?.pid === 4242) return { return: { exited: true, exitcode: 0 } };
    if (domain.name !== 'bare') return files.handler(domain, command, timeout);
    const reply = defaultAgentHandler(domain, command, timeout) as {
      return?: { supported_commands?: { name: string; enabled: boolean }[] };
    };
    if (command.execute === 'guest-info')
      for (const c of reply.return?.supported_commands ?? []) c.enabled = /^guest-(info|ping|sync)/.test(c.name);
    return reply as never;
  };
  const { gw } = await build({
    domains: ['web1', 'other', 'stuck', 'broken', 'bare'],
    agent,
    config: {
      auth: {
        mode: 'tokens',
        identities: [
          { name: 'all', tokenSha256: tokenSha256(tokens.all), scopes: [...SCOPES] },
          { name: 'narrow', tokenSha256: tokenSha256(tokens.narrow), scopes: [narrowScope] },
          { name: 'elsewhere', tokenSha256: tokenSha256(tokens.elsewhere), scopes: [...SCOPES], domains: ['other'] },
        ],
      },
      limits: { bodyBytes: 1024, ...limits },
      rawCommands: { enabled: true },
    } as never,
  });
  return gw!;
}

const url = (path: string, domain = 'web1') =>
  path.replace('{domain}', domain).replace('{path}', 'tmp/probe.txt').replace('{pid}', '4242').replace('{user}', 'root');
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const takesBody = (m: Method) => m === 'POST' || m === 'PUT' || m === 'PATCH' || m === 'DELETE';

/** Bodies that get past validation, where an empty object would not. */
const SAMPLES: Record<string, { body: unknown; headers?: Record<string, string> }> = {
  startExec: { body: { path: '/bin/true' } },
  runAgentCommand: { body: { execute: 'guest-ping' } },
  putFile: { body: 'probe', headers: { 'content-type': 'application/octet-stream' } },
};

/** The requests that provoke what an operation can answer, each with the status it got. */
async function probe(gw: TestGateway, { path, method, op }: Op): Promise<{ what: string; status: number }[]> {
  const seen: { what: string; status: number }[] = [];
  const send = async (what: string, target: string, body?: unknown, headers: Record<string, string> = {}) =>
    seen.push({ what, status: (await request(gw, method, target, body, headers)).status });
  const all = bearer(tokens.all);
  const agentRoute = op.parameters?.some((p) => p.in === 'query' && p.name === 'timeoutMs');
  await send('no token', url(path));
  await send('a token without the scope', url(path), undefined, bearer(tokens.narrow));
  await send('a token in the URL', `${url(path)}?access_token=${tokens.all}`);
  await send('an ordinary request', url(path), takesBody(method) ? {} : undefined, all);
  if (method === 'GET') {
    // A conditional GET: the answer's ETag sent back.
    const first = await request(gw, method, url(path), undefined, all);
    const etag = first.headers.etag;
    if (typeof etag === 'string') await send('its own ETag in If-None-Match', url(path), undefined, { ...all, 'if-none-match': etag });
  }
  const sample = SAMPLES[op.operationId];
  if (sample) await send('a valid request', url(path), sample.body, { ...all, ...sample.headers });
  if (path.includes('{domain}')) {
    await send('an unknown domain', url(path, 'no-such-domain'), undefined, all);
    await send("a domain outside the token's patterns", url(path), undefined, bearer(tokens.elsewhere));
    await send('an invalid domain id', url(path, 'a%20b'), undefined, all);
  }
  if (agentRoute) {
    await send('a bad deadline', `${url(path)}?timeoutMs=soon`, undefined, all);
    await send('an agent that answers too late', `${url(path, 'stuck')}?timeoutMs=50`, takesBody(method) ? {} : undefined, all);
    await send('an agent that fails', url(path, 'broken'), takesBody(method) ? {} : undefined, all);
    await send('an agent with the command disabled', url(path, 'bare'), takesBody(method) ? {} : undefined, all);
  }
  if (path.includes('{path}') && method === 'GET')
    await send('a range past the end', url(path), undefined, { ...all, range: 'bytes=99999999-' });
  if (takesBody(method)) {
    await send('a body of an unknown type', url(path), 'text', { ...all, 'content-type': 'text/x-unknown' });
    await send('a body too large', url(path), { pad: 'x'.repeat(4096) }, all);
    await send('malformed JSON', url(path), '{"a":', { ...all, 'content-type': 'application/json' });
  }
  return seen;
}

describe('the statuses each operation declares', () => {
  it('include every status its nature implies (derived here, not by the gateway)', async () => {
    const gw = await gatewayFor('read', { rateLimit: { max: 600 }, unauthenticated: { max: 30 } });
    const doc = gw.app.swagger() as never;
    for (const { path, method, op } of operationsOf(doc)) {
      const guarded = op['x-permission'] !== 'public';
      const domainScoped = path.startsWith('/domains/{domain}');
      const talksToAgent = op.parameters?.some((p) => p.in === 'query' && p.name === 'timeoutMs') && domainScoped;
      const expected = [
        400,
        500,
        503,
        ...(guarded ? [401, 403, 429] : []),
        ...(domainScoped ? [404, 409] : []),
        ...(talksToAgent ? [502, 504] : []),
        ...(takesBody(method) ? [413, 415] : []),
        ...(path.includes('{path}') && method === 'GET' ? [206, 416] : []),
      ];
      const declared = Object.keys(op.responses).map(Number);
      for (const status of expected) expect(declared, `${op.operationId} (${method} ${path}) declares ${status}`).toContain(status);
    }
  });

  it('include every status the gateway answers to requests that provoke them', async () => {
    const seenAnywhere = new Set<number>();
    const undeclared: string[] = [];
    // The narrow token's one scope must not be the one the operation needs: two gateways, one for 'read' routes.
    const byScope = { read: await gatewayFor('exec'), other: await gatewayFor('read') };
    const doc = byScope.read.app.swagger() as never;
    for (const operation of operationsOf(doc)) {
      const gw = otherScope(operation.op['x-permission']) === 'exec' ? byScope.read : byScope.other;
      for (const { what, status } of await probe(gw, operation)) {
        seenAnywhere.add(status);
        if (!(String(status) in operation.op.responses))
          undeclared.push(`${operation.op.operationId} (${operation.method} ${operation.path}): ${what} answered ${status}`);
      }
    }
    expect(undeclared).toEqual([]);
    // The probes did provoke what they are for (else this test would pass on answers that never came).
    for (const status of [200, 201, 304, 400, 401, 403, 404, 413, 415, 416, 501, 502, 504])
      expect([...seenAnywhere].sort(), `provoked ${status}`).toContain(status);
  }, 120_000);

  it('include 429 wherever a rate limit or the refusal limit answers it', async () => {
    const gw = await gatewayFor('exec', { rateLimit: { max: 1, timeWindowMs: 60_000 }, unauthenticated: { max: 1, timeWindowMs: 60_000 } });
    const doc = gw.app.swagger() as never;
    const undeclared: string[] = [];
    let limited = 0;
    for (const { path, method, op } of operationsOf(doc)) {
      for (const headers of [{}, bearer(tokens.all)]) {
        const status = (await request(gw, method, url(path), undefined, headers)).status;
        if (status === 429) limited++;
        if (!(String(status) in op.responses)) undeclared.push(`${op.operationId}: ${status}`);
      }
    }
    expect(undeclared).toEqual([]);
    expect(limited).toBeGreaterThan(40);
  }, 60_000);
});
