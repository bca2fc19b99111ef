// CORS (cors.origins): off by default; an allowed origin gets its own origin back with the exposed headers, on
// answers and refusals alike; a preflight is answered without a token and is not counted as a refusal; origins that
// merely contain, end with or resemble an allowed one, and the 'null' origin, get nothing.
import { describe, expect, it } from 'vitest';
import { originMatcher, originPatternProblem } from '../../src/config/cors-origins.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { build } from '../support/harness.js';

const token = newToken();
const tokens = { mode: 'tokens' as const, identities: [{ name: 'ui', tokenSha256: tokenSha256(token), scopes: ['read' as const] }] };
const ORIGIN = 'https://ops.example.org';

function preflight(origin: string, headers = 'authorization') {
  return { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': headers };
}

describe('origin patterns', () => {
  const allowed = originMatcher(['https://ops.example.org', 'https://*.apps.example.org', 'http://localhost:*', 'http://127.0.0.1:8081']);

  it.each([
    'https://ops.example.org',
    'https://a.apps.example.org',
    'https://a.b.apps.example.org',
    'http://localhost',
    'http://localhost:5173',
    'http://127.0.0.1:8081',
  ])('grants %s', (origin) => {
    expect(allowed(origin)).toBe(true);
  });

  it.each([
    'https://ops.example.org.evil.com',
    'https://evilops.example.org',
    'https://evil-ops.example.org',
    'https://ops.example.orgx',
    'http://ops.example.org',
    'https://ops.example.org:444',
    'https://ops.example.org/',
    'https://OPS.example.org',
    'https://apps.example.org',
    'https://evilapps.example.org',
    'https://a.apps.example.org.evil.com',
    'https://a.apps.example.org:8443',
    'http://localhost.evil.com',
    'http://localhost:5173.evil.com',
    'http://127.0.0.1:80811',
    'http://127.0.0.1',
    'null',
    '',
    ' https://ops.example.org',
    'https://ops.example.org\n',
    undefined,
  ])('refuses %j', (origin) => {
    expect(allowed(origin)).toBe(false);
  });

  it("'*' grants any origin but 'null'", () => {
    const any = originMatcher(['*']);
    expect(any('https://anything.example')).toBe(true);
    expect(any('null')).toBe(false);
    expect(any(undefined)).toBe(false);
  });

  it.each([
    ['null', /null/],
    ['/^https:\\/\\/.*$/', /regular expressions/],
    ['https://ops.example.org/', /without a path/],
    ['https://Ops.example.org', /lower case/],
    ['ops.example.org', /http\(s\)/],
    ['https://ops.*.org', /only before the host/],
    ['https://*example.org', /only before the host/],
    ['ftp://ops.example.org', /http\(s\)/],
    ['https://ops.example.org:443', /default port/],
    ['http://localhost:80', /default port/],
    ['http://localhost:70000', /not a port/],
  ])('the config refuses %j', (pattern, message) => {
    expect(originPatternProblem(pattern)).toMatch(message);
    expect(() => parseConfig({ cors: { origins: [pattern] } })).toThrow(ConfigError);
  });

  it("the config refuses '*' together with credentials, and takes each alone", () => {
    expect(() => parseConfig({ cors: { origins: ['*'], credentials: true } })).toThrow(/credentials/);
    expect(parseConfig({ cors: { origins: ['*'] } }).cors.credentials).toBe(false);
    expect(parseConfig({ cors: { origins: [ORIGIN], credentials: true } }).cors.credentials).toBe(true);
    expect(parseConfig({}).cors).toEqual({ origins: [], credentials: false, maxAgeSeconds: 600 });
  });
});

describe('the gateway', () => {
  it('sends no CORS header and answers no preflight when cors.origins is empty (the default)', async () => {
    const { call } = await build({ domains: ['web1'] });
    const r = await call('GET', '/domains', undefined, { origin: ORIGIN });
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    const p = await call('OPTIONS' as 'GET', '/domains', undefined, preflight(ORIGIN));
    expect(p.status).toBe(404);
    expect(p.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers an allowed origin with its own origin, Vary: Origin and the exposed headers; on a 401 too', async () => {
    const { call } = await build({ domains: ['web1'], config: { auth: tokens, cors: { origins: [ORIGIN] } } });
    const ok = await call('GET', '/domains', undefined, { origin: ORIGIN, authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(ok.headers.vary).toMatch(/origin/i);
    expect(ok.headers['access-control-allow-credentials']).toBeUndefined();
    const exposed = String(ok.headers['access-control-expose-headers']).split(/,\s*/);
    for (const h of ['Location', 'Retry-After', 'X-Request-Id', 'Content-Range', 'WWW-Authenticate', 'ETag']) expect(exposed).toContain(h);

    const refused = await call('GET', '/domains', undefined, { origin: ORIGIN });
    expect(refused.status).toBe(401);
    expect(refused.headers['content-type']).toMatch(/problem\+json/);
    expect(refused.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(refused.headers['access-control-expose-headers']).toMatch(/WWW-Authenticate/);
    const forbidden = await call('POST', '/domains/web1/power', { action: 'reboot' }, { origin: ORIGIN, authorization: `Bearer ${token}` });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers['access-control-allow-origin']).toBe(ORIGIN);
    const missing = await call('GET', '/nothing-here', undefined, { origin: ORIGIN, authorization: `Bearer ${token}` });
    expect(missing.status).toBe(404);
    expect(missing.headers['access-control-allow-origin']).toBe(ORIGIN);
  });

  it('answers a preflight without a token, naming the methods and headers allowed; never counted as a refusal', async () => {
    const { call, gw } = await build({
      domains: ['web1'],
      config: { auth: tokens, cors: { origins: [ORIGIN] }, limits: { unauthenticated: { max: 2 } } },
    });
    for (let i = 0; i < 5; i++) {
      const p = await call('OPTIONS' as 'GET', '/domains/web1/power', undefined, preflight(ORIGIN, 'authorization,content-type'));
      expect(p.status).toBe(204);
      expect(p.headers['access-control-allow-origin']).toBe(ORIGIN);
      expect(String(p.headers['access-control-allow-methods'])).toMatch(/POST/);
      const allowedHeaders = String(p.headers['access-control-allow-headers']).toLowerCase();
      for (const h of ['authorization', 'content-type', 'range', 'if-none-match', 'last-event-id']) expect(allowedHeaders).toContain(h);
      expect(p.headers['access-control-max-age']).toBe('600');
    }
    expect(gw.audit.filter((a) => a.outcome !== 'ok' && a.status === 401)).toEqual([]);
    // The limit of two refusals was not touched by the five preflights: the first unauthenticated call is a plain 401.
    expect((await call('GET', '/domains', undefined, { origin: ORIGIN })).status).toBe(401);
  });

  it.each([
    'https://ops.example.org.evil.com',
    'https://evilops.example.org',
    'http://ops.example.org',
    'https://evilapps.example.org',
    'https://apps.example.org.evil.com',
    'null',
  ])('gives %j no CORS header, on answers and preflights', async (origin) => {
    const { call } = await build({
      domains: ['web1'],
      config: { auth: tokens, cors: { origins: [ORIGIN, 'https://*.apps.example.org'] } },
    });
    const r = await call('GET', '/domains', undefined, { origin, authorization: `Bearer ${token}` });
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    expect(r.headers['access-control-expose-headers']).toBeUndefined();
    const p = await call('OPTIONS' as 'GET', '/domains', undefined, preflight(origin));
    expect(p.status).toBe(404);
    expect(p.headers['access-control-allow-origin']).toBeUndefined();
    expect(p.headers['access-control-allow-methods']).toBeUndefined();
  });

  it('sends Access-Control-Allow-Credentials only when cors.credentials is on', async () => {
    const { call } = await build({ domains: ['web1'], config: { cors: { origins: [ORIGIN], credentials: true } } });
    const r = await call('GET', '/domains', undefined, { origin: ORIGIN });
    expect(r.headers['access-control-allow-credentials']).toBe('true');
    expect(r.headers['access-control-allow-origin']).toBe(ORIGIN);
  });

  it('answers an OPTIONS without Origin 404 problem+json, as without CORS', async () => {
    const { call } = await build({ domains: ['web1'], config: { cors: { origins: [ORIGIN] } } });
    const r = await call('OPTIONS' as 'GET', '/domains');
    expect(r.status).toBe(404);
    expect(r.headers['content-type']).toMatch(/problem\+json/);
  });
});
