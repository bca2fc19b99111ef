// Guard rails (limits.*): per-identity request rates, the JSON body limit beside the upload route's own,
// and the timeouts handed to the HTTP server (enforced on real sockets in http-hardening.test.ts).
import { describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { parseConfig } from '../../src/config/load.js';
import { FakeGuestFiles } from '../support/fake-guest-files.js';
import type { FakeLibvirtd } from '../support/fake-libvirtd.js';
import { build } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;

const tokens = { alice: newToken(), bob: newToken(), robot: newToken() };
const identities = [
  { name: 'alice', tokenSha256: tokenSha256(tokens.alice), scopes: ['read' as const, 'files:write' as const] },
  { name: 'bob', tokenSha256: tokenSha256(tokens.bob), scopes: ['read' as const] },
  { name: 'robot', tokenSha256: tokenSha256(tokens.robot), scopes: ['read' as const], rateLimit: { max: 5 } },
];

async function start(overrides: Record<string, unknown>) {
  ({ fake, gw } = await build({ domains: ['web1'], config: overrides as never }));
  return gw;
}

const get = (url: string, token?: string) =>
  gw!.app.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} });

describe('rate limits', () => {
  it('answers 429 rate_limited with Retry-After past max for one identity, while another is unaffected', async () => {
    await start({ auth: { mode: 'tokens', identities }, limits: { rateLimit: { max: 3, timeWindowMs: 60_000 } } });
    for (let i = 0; i < 3; i++) expect((await get('/domains', tokens.alice)).statusCode).toBe(200);
    const refused = await get('/domains', tokens.alice);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['content-type']).toContain('application/problem+json');
    expect(refused.json()).toMatchObject({ code: 'rate_limited', status: 429 });
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.json().retryAfter).toBe(retryAfter);
    // The limit follows the identity: bob, from the same address, still gets through.
    expect((await get('/domains', tokens.bob)).statusCode).toBe(200);
  });

  it('uses an identity’s own rateLimit instead of the global one', async () => {
    await start({ auth: { mode: 'tokens', identities }, limits: { rateLimit: { max: 2, timeWindowMs: 60_000 } } });
    for (let i = 0; i < 5; i++) expect((await get('/domains', tokens.robot)).statusCode).toBe(200);
    expect((await get('/domains', tokens.robot)).statusCode).toBe(429);
  });

  it('never limits /healthz and /readyz', async () => {
    await start({ auth: { mode: 'tokens', identities }, limits: { rateLimit: { max: 1, timeWindowMs: 60_000 } } });
    for (let i = 0; i < 5; i++) {
      expect((await get('/healthz')).statusCode).toBe(200);
      expect((await get('/readyz')).statusCode).toBe(200);
    }
  });

  it('counts public routes without a token per client address', async () => {
    await start({ auth: { mode: 'tokens', identities }, limits: { rateLimit: { max: 1, timeWindowMs: 60_000 } } });
    expect((await get('/openapi.json')).statusCode).toBe(200);
    const refused = await get('/openapi.json');
    expect(refused.statusCode).toBe(429);
    expect(refused.json().code).toBe('rate_limited');
  });

  it('is off with max 0', async () => {
    await start({ limits: { rateLimit: { max: 0 } } });
    for (let i = 0; i < 5; i++) expect((await get('/domains')).statusCode).toBe(200);
  });
});

describe('body limits', () => {
  it('answers 413 payload_too_large as problem+json for a JSON body over limits.bodyBytes', async () => {
    await start({ limits: { bodyBytes: 1024 } });
    const res = await gw!.app.inject({
      method: 'POST',
      url: '/domains/web1/exec',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ path: '/bin/true', args: ['x'.repeat(2048)] }),
    });
    expect(res.statusCode).toBe(413);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json().code).toBe('payload_too_large');
    expect(fake!.agentLog).toEqual([]);
  });

  it('leaves uploads to files.maxUploadBytes', async () => {
    await start({ limits: { bodyBytes: 1024 } });
    const guest = new FakeGuestFiles();
    fake!.agentHandler = guest.handler;
    const content = Buffer.alloc(16 * 1024, 7);
    const put = await gw!.app.inject({
      method: 'PUT',
      url: '/domains/web1/files/tmp/big',
      payload: content,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(put.statusCode).toBe(200);
    expect(guest.files.get('/tmp/big')!.equals(content)).toBe(true);
  });
});

describe('timeouts', () => {
  it('refuses a connection timeout that would cut a request waiting for the agent', () => {
    expect(() => parseConfig({ limits: { connectionTimeoutMs: 60_000 } })).toThrow(/limits\.connectionTimeoutMs/);
    expect(() => parseConfig({ limits: { connectionTimeoutMs: 0 } })).not.toThrow();
    expect(() => parseConfig({ limits: { connectionTimeoutMs: 200_000 }, agent: { maxTimeoutMs: 100_000 } })).not.toThrow();
  });

  it('hands limits.* timeouts to the HTTP server', async () => {
    await start({ limits: { connectionTimeoutMs: 123_000, requestTimeoutMs: 456_000, keepAliveTimeoutMs: 7_000 } });
    const server = gw!.app.server;
    expect(server.timeout).toBe(123_000);
    expect(server.requestTimeout).toBe(456_000);
    expect(server.keepAliveTimeout).toBe(7_000);
    // Node's default headersTimeout (60 s) and check interval (30 s) would let a slow client outstay both.
    expect(server.headersTimeout).toBe(30_000);
    expect((server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval).toBeLessThanOrEqual(1_000);
  });

  it('keeps the headers deadline within the request deadline', async () => {
    await start({ limits: { requestTimeoutMs: 10_000, headersTimeoutMs: 20_000 } });
    expect(gw!.app.server.headersTimeout).toBe(10_000);
    expect(gw!.app.server.requestTimeout).toBe(10_000);
  });
});
