// Authentication and authorisation over every route of the OpenAPI document, against the fake libvirtd:
// no token, a wrong token, a missing scope and a forbidden domain are refused (401/403) and the agent
// receives nothing.
import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it } from 'vitest';
import { KNOWN_RAW_COMMANDS, rawCommandScopes } from '../../src/auth/raw-scopes.js';
import { SCOPES, type Scope } from '../../src/config/scopes.js';
import { matchToken, newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { FakeLibvirtd } from '../support/fake-libvirtd.js';
import { build, type Harness } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';

const doc = JSON.parse(readFileSync('openapi/openapi.json', 'utf8')) as {
  paths: Record<string, Record<string, { 'x-permission': string }>>;
};
const SAMPLE: Record<string, string> = { domain: 'web1', pid: '1', user: 'root', path: 'etc/hostname' };
const operations = Object.entries(doc.paths).flatMap(([template, item]) =>
  Object.entries(item).map(([method, op]) => ({
    method: method.toUpperCase(),
    url: template.replace(/\{(\w+)\}/g, (_, p: string) => SAMPLE[p] ?? 'x'),
    permission: op['x-permission'],
    hasDomain: template.includes('{domain}'),
  })),
);
const guarded = operations.filter((o) => o.permission !== 'public');

const tokens = { all: newToken(), readOnly: newToken(), otherDomains: newToken(), execOnly: newToken() };
const identities = [
  { name: 'all', tokenSha256: tokenSha256(tokens.all), scopes: [...SCOPES], domains: ['*'] },
  { name: 'read-only', tokenSha256: tokenSha256(tokens.readOnly), scopes: ['read' as const], domains: ['*'] },
  { name: 'exec-only', tokenSha256: tokenSha256(tokens.execOnly), scopes: ['exec' as const], domains: ['*'] },
  { name: 'other-domains', tokenSha256: tokenSha256(tokens.otherDomains), scopes: [...SCOPES], domains: ['db-*', '00000000-*'] },
];

let h: Harness;
let fake: FakeLibvirtd;
let gw: TestGateway | null = null;

beforeEach(async () => {
  h = await build({ domains: ['web1', 'db-1'], gateway: false });
  fake = h.fake;
});

async function start(auth: object = { mode: 'tokens', identities }) {
  gw = await h.startGateway({ auth: auth as never });
  return gw;
}

function call(o: { method: string; url: string }, token?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const payload = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(o.method) ? '{}' : undefined;
  return gw!.app.inject({ method: o.method as 'GET', url: o.url, headers, payload });
}

/** A scope that is not the one the route needs. */
const otherScope = (needed: string): Scope => (needed === 'read' ? 'exec' : 'read');

describe('every guarded route', () => {
  it('has routes to check', () => {
    expect(guarded.length).toBeGreaterThanOrEqual(30);
  });

  it('answers 401 with WWW-Authenticate without a token, or with a wrong one, and sends nothing to the agent', async () => {
    await start();
    for (const o of guarded) {
      const none = await call(o);
      expect(none.statusCode, `${o.method} ${o.url}`).toBe(401);
      expect(none.headers['www-authenticate']).toBe('Bearer realm="qga-gateway"');
      if (o.method !== 'HEAD') expect(none.json().code).toBe('unauthenticated');
      for (const bad of [newToken(), 'not a token', `${tokens.all}x`]) {
        const wrong = await call(o, bad);
        expect(wrong.statusCode, `${o.method} ${o.url}`).toBe(401);
        expect(wrong.headers['www-authenticate']).toContain('error="invalid_token"');
      }
      const basic = await gw!.app.inject({
        method: o.method as 'GET',
        url: o.url,
        headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
      });
      expect(basic.statusCode).toBe(401);
    }
    expect(fake.agentCommandCount).toBe(0);
  });

  it('answers 403 for a token without the scope the route needs, and sends nothing to the agent', async () => {
    const scoped = Object.fromEntries(SCOPES.map((s) => [s, newToken()]));
    await start({
      mode: 'tokens',
      identities: SCOPES.map((s) => ({ name: `only-${s}`, tokenSha256: tokenSha256(scoped[s]!), scopes: [s] })),
    });
    for (const o of guarded) {
      const r = await call(o, scoped[otherScope(o.permission)]);
      expect(r.statusCode, `${o.method} ${o.url}`).toBe(403);
      if (o.method === 'HEAD') continue; // no body to read
      expect(r.json()).toMatchObject({ code: 'forbidden' });
      expect(r.json().detail).toContain(o.permission);
    }
    expect(fake.agentCommandCount).toBe(0);
  });

  it('answers 403 for a domain outside the token’s patterns, by name or UUID, and for one that does not exist', async () => {
    await start();
    const web1 = fake.domain('web1');
    for (const o of guarded.filter((x) => x.hasDomain)) {
      for (const url of [o.url, o.url.replace('/web1', `/${web1.uuid}`), o.url.replace('/web1', '/no-such-domain')]) {
        const r = await call({ method: o.method, url }, tokens.otherDomains);
        expect(r.statusCode, `${o.method} ${url}`).toBe(403);
        if (o.method !== 'HEAD') expect(r.json().code).toBe('forbidden');
      }
    }
    expect(fake.agentCommandCount).toBe(0);
  });
});

describe('every scope but the one needed', () => {
  /** The guest-agent commands an operation's description names ("Agent command(s): ..." up to its first full stop). */
  const commandsOf = (template: string, method: string) => {
    const desc = (doc.paths[template]![method] as unknown as { description?: string }).description ?? '';
    const m = /^Agent commands?: ([^.]*)/.exec(desc);
    return m ? [...m[1]!.matchAll(/guest-[a-z-]+/g)].map((x) => x[0]) : [];
  };
  const allBut = (...needed: Scope[]) => SCOPES.filter((s) => !needed.includes(s));
  /** Arguments that would pass every check but the scope. */
  const sample: Record<string, Record<string, unknown>> = {
    'guest-file-open': { path: '/tmp/x', mode: 'r' },
    'guest-exec': { path: '/bin/true' },
    'guest-set-user-password': { username: 'root', password: 'eA==', crypted: false },
  };

  it('refuses every route to an identity holding every other scope, before any agent command', async () => {
    const tokensByRoute = new Map(guarded.map((o) => [o, newToken()]));
    await start({
      mode: 'tokens',
      identities: guarded.map((o, i) => ({
        name: `all-but-${i}`,
        tokenSha256: tokenSha256(tokensByRoute.get(o)!),
        scopes: allBut(o.permission as Scope),
      })),
    });
    for (const o of guarded) {
      const r = await call(o, tokensByRoute.get(o));
      expect(r.statusCode, `${o.method} ${o.url}`).toBe(403);
      if (o.method !== 'HEAD') expect(r.json().detail).toContain(`'${o.permission}'`);
    }
    expect(fake.agentCommandCount).toBe(0);
  });

  it('refuses, through the raw endpoint, every command a route sends to an identity with admin and every scope but that route’s', async () => {
    const cases = Object.entries(doc.paths).flatMap(([template, item]) =>
      Object.entries(item)
        .filter(([, op]) => !['public', 'admin', 'metrics'].includes(op['x-permission']))
        .flatMap(([method, op]) =>
          commandsOf(template, method).map((execute) => ({
            execute,
            permission: op['x-permission'] as Scope,
            route: `${method.toUpperCase()} ${template}`,
          })),
        ),
    );
    expect(cases.length).toBeGreaterThanOrEqual(30);
    const tokenOf = Object.fromEntries(SCOPES.map((s) => [s, newToken()]));
    gw = await h.startGateway({
      rawCommands: { enabled: true },
      auth: {
        mode: 'tokens',
        identities: SCOPES.filter((s) => s !== 'admin').map((s) => ({
          name: `all-but-${s}`,
          tokenSha256: tokenSha256(tokenOf[s]!),
          scopes: allBut(s),
        })),
      } as never,
    });
    // A write route also sends reads (PATCH /vcpus reads them first): its own effect is the command of its scope.
    const effects = cases.flatMap((c) => {
      // The file route reads with mode r and writes with w: open in the mode of the route's own scope.
      const args =
        c.execute === 'guest-file-open' ? { path: '/tmp/x', mode: c.permission === 'files:write' ? 'w' : 'r' } : sample[c.execute];
      const need = rawCommandScopes(c.execute, args);
      return need.all.includes(c.permission) ? [{ ...c, args }] : [];
    });
    expect(new Set(effects.map((c) => c.route)).size).toBe(new Set(cases.map((c) => c.route)).size);
    for (const { args, ...c } of effects) {
      const r = await gw.app.inject({
        method: 'POST',
        url: '/domains/web1/agent/commands',
        headers: { authorization: `Bearer ${tokenOf[c.permission]}` },
        payload: { execute: c.execute, ...(args ? { arguments: args } : {}) },
      });
      expect(r.statusCode, `${c.route}: raw ${c.execute} without '${c.permission}'`).toBe(403);
    }
    expect(fake.agentCommandCount).toBe(0);
  });

  it('knows, for every command a route sends, a raw scope among those routes’ permissions', () => {
    const permissionsOf = new Map<string, Set<string>>();
    for (const [template, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        for (const c of commandsOf(template, method)) permissionsOf.set(c, (permissionsOf.get(c) ?? new Set()).add(op['x-permission']));
      }
    }
    for (const [execute, permissions] of permissionsOf) {
      if (/^guest-sync/.test(execute)) continue; // the transport's own, refused raw whatever the scopes
      expect(KNOWN_RAW_COMMANDS, execute).toContain(execute);
      const args = execute === 'guest-file-open' ? { mode: 'r' } : undefined;
      const need = rawCommandScopes(execute, args);
      expect(need.all.length + (need.any?.length ?? 0), execute).toBeGreaterThan(0);
      for (const s of need.all) expect([...permissions], `${execute} needs ${s}`).toContain(s);
      // One of `any` suffices (guest-file-close: files:read or files:write), so one of them must be a route's.
      if (need.any)
        expect(
          need.any.some((s) => permissions.has(s)),
          `${execute} needs one of ${need.any.join(', ')} (routes: ${[...permissions].join(', ')})`,
        ).toBe(true);
    }
  });
});

describe('what an identity sees', () => {
  it('lists only the domains its patterns match, and asks only their agents for addresses', async () => {
    await start();
    const list = await call({ method: 'GET', url: '/domains' }, tokens.otherDomains);
    expect(list.json().domains.map((d: { name: string }) => d.name)).toEqual(['db-1']);
    const all = await call({ method: 'GET', url: '/domains' }, tokens.all);
    expect(all.json().domains.map((d: { name: string }) => d.name)).toEqual(['db-1', 'web1']);
    const addresses = await call({ method: 'GET', url: '/addresses?domain=web1,db-1' }, tokens.otherDomains);
    const byName = Object.fromEntries(addresses.json().domains.map((d: { name: string }) => [d.name, d]));
    expect(byName['db-1'].ok).toBe(true);
    expect(byName.web1.error.code).toBe('domain_not_found');
    expect(fake.agentLog.filter((e) => e.execute === 'guest-network-get-interfaces').map((e) => e.domain)).toEqual(['db-1']);
  });

  it('lets a token with the scope and the domain through', async () => {
    await start();
    expect((await call({ method: 'GET', url: '/domains/db-1/agent/ping' }, tokens.otherDomains)).statusCode).toBe(200);
    expect((await call({ method: 'GET', url: '/domains/web1/network-interfaces' }, tokens.readOnly)).statusCode).toBe(200);
    expect((await call({ method: 'GET', url: '/domains/web1/network-interfaces' }, ` ${tokens.readOnly} `.trim())).statusCode).toBe(200);
    expect((await call({ method: 'GET', url: '/domains/web1' }, tokens.execOnly)).statusCode).toBe(403);
  });

  it('keeps health and the API document open unless protectPublic says otherwise', async () => {
    await start();
    for (const url of ['/healthz', '/readyz', '/openapi.json']) expect((await call({ method: 'GET', url })).statusCode, url).toBe(200);
    await gw!.close();
    gw = null;
    await start({ mode: 'tokens', identities, protectPublic: true });
    expect((await call({ method: 'GET', url: '/healthz' })).statusCode).toBe(401);
    expect((await call({ method: 'GET', url: '/healthz' }, tokens.execOnly)).statusCode).toBe(200);
  });

  it('never writes a token into the log', async () => {
    await start();
    await call({ method: 'GET', url: '/domains/web1/agent/ping' }, tokens.all);
    await call({ method: 'GET', url: '/domains/web1/agent/ping' }, `${tokens.all}x`);
    const text = JSON.stringify(gw!.logs);
    expect(text).not.toContain(tokens.all);
    expect(text).toContain('"statusCode":401');
  });
});

describe('tokens and config', () => {
  it('matches a token only to its own hash', () => {
    const a = newToken();
    const b = newToken();
    const hashes = [tokenSha256(a), tokenSha256(b)].map((h) => Buffer.from(h, 'hex'));
    expect(matchToken(a, hashes)).toBe(0);
    expect(matchToken(b, hashes)).toBe(1);
    expect(matchToken(newToken(), hashes)).toBe(-1);
    expect(a).toMatch(/^qgw_[A-Za-z0-9_-]{43}$/);
  });

  it('refuses development mode off loopback, plain tokens and duplicate identities', () => {
    expect(() => parseConfig({ listen: { host: '0.0.0.0' }, auth: { mode: 'none' } })).toThrow(/auth\.mode.*loopback/s);
    expect(parseConfig({ listen: { host: '127.0.0.1' }, auth: { mode: 'none' } }).auth.mode).toBe('none');
    expect(parseConfig({}).auth.mode).toBe('tokens');
    expect(() => parseConfig({ auth: { identities: [{ name: 'x', tokenSha256: 'secret-token', scopes: ['read'] }] } })).toThrow(
      ConfigError,
    );
    const dup = { name: 'x', tokenSha256: 'a'.repeat(64), scopes: ['read'] };
    expect(() => parseConfig({ auth: { identities: [dup, dup] } })).toThrow(/duplicate/);
  });
});

describe('audit trail', () => {
  it('records every state-changing call and every refusal, with identity, domain, action and target, and no secrets', async () => {
    await start();
    await call({ method: 'GET', url: '/domains/web1' }, tokens.all);
    await call({ method: 'GET', url: '/domains/web1' });
    await call({ method: 'GET', url: '/domains/web1' }, tokens.execOnly);
    await gw!.app.inject({
      method: 'PUT',
      url: '/domains/web1/users/root/password',
      headers: { authorization: `Bearer ${tokens.all}`, 'content-type': 'application/json' },
      payload: { password: 'hunter2-very-secret' },
    });
    await gw!.app.inject({
      method: 'POST',
      url: '/domains/web1/power',
      headers: { authorization: `Bearer ${tokens.readOnly}`, 'content-type': 'application/json' },
      payload: { action: 'reboot' },
    });
    const audit = gw!.audit;
    // The plain read is not audited; the two refusals, the password change and the refused power action are.
    expect(audit.map((a) => [a.event, a.status])).toEqual([
      ['denied', 401],
      ['denied', 403],
      ['change', audit[2]!.status],
      ['denied', 403],
    ]);
    expect(audit[0]).toMatchObject({ identity: null, route: '/domains/:domain', domain: 'web1', outcome: 'denied' });
    expect(audit[1]).toMatchObject({ identity: 'exec-only', permission: 'read' });
    expect(audit[2]).toMatchObject({ identity: 'all', domain: 'web1', user: 'root', permission: 'accounts', method: 'PUT' });
    // Refused before its body was read: the route and the permission say what was asked.
    expect(audit[3]).toMatchObject({ identity: 'read-only', route: '/domains/:domain/power', permission: 'power', outcome: 'denied' });
    const everything = JSON.stringify([audit, gw!.logs]);
    expect(everything).not.toContain('hunter2-very-secret');
    expect(everything).not.toContain(tokens.all);
  });
});
