// Keystone tokens as identities (src/auth/keystone/), against the fake libvirtd and a fake Keystone that answers
// only what the real one answered (test/support/fake-keystone.ts, test/fixtures/keystone/): roles to scopes, a
// project's token reaching only its project's instances through every route that names or lists domains, system
// scope, unscoped tokens, the validation cache and its bounds, and Keystone's faults (never a 500, never let in).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { FakeKeystone } from '../support/fake-keystone.js';
import { buildWithKeystone, PROJECT_A } from '../support/keystone-gateway.js';
import { LifecycleEvent } from '../../src/libvirt/protocol.js';
import { waitFor } from '../support/fake-libvirtd.js';
import { build } from '../support/harness.js';
import { openSse } from '../support/sse-client.js';
import { novaInstance } from '../support/nova-fixtures.js';

const A = PROJECT_A;
const keystones: FakeKeystone[] = [];
afterEach(async () => {
  for (const k of keystones.splice(0)) await k.stop();
});

/** Beside Keystone, a bearer identity 'ops' that may read the domain without Nova metadata. */
async function setup(keystone: Record<string, unknown> = {}) {
  const bearer = newToken();
  const h = await buildWithKeystone({
    keystone,
    identities: [{ name: 'ops', tokenSha256: tokenSha256(bearer), scopes: ['read'], domains: ['plain'] }],
  });
  return { ...h, bearer };
}

const names = (body: { domains: { name: string }[] }) => body.domains.map((d) => d.name).sort();

describe('Keystone tokens (X-Auth-Token) as identities', () => {
  it("a project-scoped member sees and touches only its project's instances, through every route that names or lists domains", async () => {
    const { ks, as, fake } = await setup();
    const alice = as(ks.issue('alice-project'));
    expect(names((await alice('GET', '/domains')).body)).toEqual(['instance-0000000a']);
    expect(names((await alice('GET', '/addresses')).body)).toEqual(['instance-0000000a']);
    expect((await alice('GET', '/domains/instance-0000000a')).status).toBe(200);
    expect((await alice('GET', '/domains/instance-0000000a/network-interfaces')).status).toBe(200);
    const uuidB = fake.domains.find((d) => d.name === 'instance-0000000b')!.uuid;
    for (const url of [
      '/domains/instance-0000000b',
      `/domains/${uuidB}`,
      '/domains/instance-0000000b/network-interfaces',
      '/domains/instance-0000000b/files/etc/hostname',
      '/domains/instance-0000000b/agent/ping',
      '/domains/plain',
      '/domains/no-such-domain',
    ]) {
      const r = await alice('GET', url);
      expect([url, r.status, r.body.code]).toEqual([url, 403, 'forbidden']);
    }
    // /addresses?domain= names it: it looks like a domain that does not exist, and its agent is never asked.
    const sentBefore = fake.agentLog.length;
    const filtered = await alice('GET', '/addresses?domain=instance-0000000b,no-such');
    expect(filtered.body.domains.map((d: { name: string; error?: { code: string } }) => [d.name, d.error?.code])).toEqual([
      ['instance-0000000b', 'domain_not_found'],
      ['no-such', 'domain_not_found'],
    ]);
    expect(fake.agentLog.slice(sentBefore).filter((e) => e.domain === 'instance-0000000b')).toEqual([]);
    // Scopes come from the roles: a member may not exec, nor send raw commands.
    const exec = await alice('POST', '/domains/instance-0000000a/exec', { path: '/bin/true' });
    expect([exec.status, exec.body.code]).toEqual([403, 'forbidden']);
    const raw = await alice('POST', '/domains/instance-0000000b/agent/commands', { execute: 'guest-ping' });
    expect([raw.status, raw.body.code]).toEqual([403, 'forbidden']);
    // An admin of another project holds every scope the routes need, and still reaches none of these instances.
    const otherAdmin = as(ks.issue('admin-project'));
    for (const [method, url, body] of [
      ['POST', '/domains/instance-0000000a/agent/commands', { execute: 'guest-ping' }],
      ['POST', '/domains/instance-0000000b/exec', { path: '/bin/true' }],
      ['GET', '/domains/instance-0000000a/files/etc/hostname', undefined],
    ] as const) {
      const r = await otherAdmin(method, url, body);
      expect([url, r.status, r.body.code]).toEqual([url, 403, 'forbidden']);
    }
    expect(names((await otherAdmin('GET', '/domains')).body)).toEqual([]);
  });

  it('a system-scoped admin reaches every domain; an unscoped or domain-scoped token none, unless unscopedDomains says', async () => {
    const { ks, as } = await setup();
    const admin = as(ks.issue('admin-system'));
    expect(names((await admin('GET', '/domains')).body)).toEqual(['instance-0000000a', 'instance-0000000b', 'plain']);
    expect((await admin('GET', '/domains/instance-0000000b/network-interfaces')).status).toBe(200);
    for (const kind of ['alice-unscoped', 'admin-domain'] as const) {
      const t = as(ks.issue(kind));
      const list = await t('GET', '/domains');
      expect([kind, list.status, list.body.domains]).toEqual([
        kind,
        kind === 'alice-unscoped' ? 403 : 200,
        kind === 'alice-unscoped' ? undefined : [],
      ]);
      expect((await t('GET', '/domains/instance-0000000a')).status).toBe(403);
    }
    const granted = await setup({ unscopedDomains: ['plain'] });
    const dom = granted.as(granted.ks.issue('admin-domain'));
    expect(names((await dom('GET', '/domains')).body)).toEqual(['plain']);
  });

  it('roles map to scopes only as configured: a token whose roles map to nothing is refused (403), not let in', async () => {
    const { ks, as } = await setup({ roles: {} });
    const r = await as(ks.issue('admin-system'))('GET', '/domains');
    expect([r.status, r.body.code]).toEqual([403, 'forbidden']);
  });

  it('keeps a validation for cacheTtlMs at most and never past the token expiry; a revoked token fails once that passes', async () => {
    const { ks, as } = await setup({ cacheTtlMs: 300 });
    const token = ks.issue('alice-project');
    const alice = as(token);
    expect((await alice('GET', '/domains')).status).toBe(200);
    expect((await alice('GET', '/domains')).status).toBe(200);
    expect(ks.validations).toBe(1);
    ks.revoke(token);
    expect((await alice('GET', '/domains')).status).toBe(200); // still cached: the documented bound
    await new Promise((r) => setTimeout(r, 350));
    const after = await alice('GET', '/domains');
    expect([after.status, after.body.code]).toEqual([401, 'unauthenticated']);
    // Expiring sooner than the TTL: asked again once it expired, and refused.
    const { ks: ks2, as: as2 } = await setup({ cacheTtlMs: 600_000 });
    const short = as2(ks2.issue('alice-project', 400));
    expect((await short('GET', '/domains')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 450));
    expect((await short('GET', '/domains')).status).toBe(401);
    expect(ks2.validations).toBe(2);
  });

  it('many requests with one new token ask Keystone once', async () => {
    const { ks, as } = await setup();
    ks.delayMs = 100;
    const alice = as(ks.issue('alice-project'));
    const answers = await Promise.all(Array.from({ length: 10 }, () => alice('GET', '/domains')));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(ks.validations).toBe(1);
  });

  it('Keystone down, slow, failing or answering nonsense: 503 auth_unavailable with Retry-After for new tokens; cached ones keep working', async () => {
    const { ks, as } = await setup({ timeoutMs: 300, retryAfterSeconds: 7 });
    const cached = as(ks.issue('alice-project'));
    expect((await cached('GET', '/domains')).status).toBe(200);
    const fresh = () => as(ks.issue('alice-project'));
    const unavailable = async (why: string) => {
      const r = await fresh()('GET', '/domains');
      expect([why, r.status, r.body.code, r.headers['retry-after']]).toEqual([why, 503, 'auth_unavailable', '7']);
      expect((await cached('GET', '/domains')).status).toBe(200);
    };
    ks.delayMs = 600;
    await unavailable('slow');
    ks.delayMs = 0;
    ks.failWith = 500;
    await unavailable('5xx');
    ks.failWith = null;
    ks.garbage = true;
    await unavailable('garbage');
    ks.garbage = false;
    await ks.stop();
    await unavailable('down');
  });

  it('a service user Keystone refuses makes every new token 503, and the log says why; bad tokens never reach Keystone', async () => {
    const { ks, as, gw } = await setup({ service: { username: 'qga-gateway', password: 'wrong', projectName: 'service' } });
    const r = await as(ks.issue('alice-project'))('GET', '/domains');
    expect([r.status, r.body.code]).toEqual([503, 'auth_unavailable']);
    expect(gw.logs.some((l) => JSON.stringify(l).includes("refused the gateway's service user"))).toBe(true);
    expect(JSON.stringify(gw.logs)).not.toContain('wrong');
    const before = ks.validations + ks.issues;
    for (const bad of ['not a token', 'x'.repeat(9000), 'tok\u0000en']) {
      const res = await as(bad)('GET', '/domains');
      expect(res.status).toBe(401);
    }
    expect(ks.validations + ks.issues).toBe(before);
  });

  it('one credential per request: X-Auth-Token beside a bearer token is refused; bearer identities keep working beside Keystone', async () => {
    const { ks, call, bearer } = await setup();
    const both = await call('GET', '/domains', undefined, { 'x-auth-token': ks.issue('admin-system'), authorization: `Bearer ${bearer}` });
    expect([both.status, both.body.code]).toEqual([401, 'unauthenticated']);
    const ops = await call('GET', '/domains', undefined, { authorization: `Bearer ${bearer}` });
    expect(names(ops.body)).toEqual(['plain']);
    const unknown = await call('GET', '/domains', undefined, { 'x-auth-token': ks.issue('alice-project').replace(/.$/, 'A') });
    expect(unknown.status).toBe(401);
  });

  it('without auth.keystone an X-Auth-Token is refused (401), and a Keystone token in the URL is refused before anything', async () => {
    const { call } = await build({ config: { auth: { mode: 'tokens', identities: [] } } });
    const r = await call('GET', '/domains', undefined, { 'x-auth-token': `gAAAAA${'x'.repeat(150)}` });
    expect([r.status, r.body.detail]).toEqual([401, expect.stringContaining('auth.keystone is not configured')]);
    const inUrl = await call('GET', `/healthz?x-auth-token=abc`);
    expect(inUrl.status).toBe(400);
    const shaped = await call('GET', `/healthz?t=gAAAAA${'Q'.repeat(150)}`);
    expect(shaped.status).toBe(400);
  });

  it('audit lines name the Keystone user, project and roles, never the token', async () => {
    const { ks, as, gw } = await setup();
    const token = ks.issue('alice-project');
    await as(token)('GET', '/domains/instance-0000000b');
    const line = gw.audit.find((l) => l.event === 'denied')!;
    expect(line).toMatchObject({
      identity: `keystone:alice@Default#${(FakeKeystone.bodyOf('alice-project', Date.now()).token.user as { id: string }).id}`,
      keystone: {
        user: { name: 'alice', domain: 'Default' },
        scope: 'project',
        project: { id: A.id, name: 'project-a' },
        roles: ['member', 'reader'],
      },
    });
    expect(JSON.stringify([gw.audit, gw.logs])).not.toContain(token);
  });

  it("GET /events shows a project's token only its project's domains, live and replayed, in order", async () => {
    const h = await setup();
    await h.gw.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (h.gw.app.server.address() as { port: number }).port;
    const alice = { 'x-auth-token': h.ks.issue('alice-project') };
    const admin = { 'x-auth-token': h.ks.issue('admin-system') };
    const mine = await openSse(`http://127.0.0.1:${port}/events`, alice);
    const all = await openSse(`http://127.0.0.1:${port}/events`, admin);
    try {
      await waitFor(() => h.gw.gateway.events!.streamCount === 2, 2000, 'two streams');
      const start = all.lastId!;
      for (const name of ['instance-0000000b', 'instance-0000000a', 'plain', 'instance-0000000a'])
        h.fake.emitLifecycle(name, LifecycleEvent.SUSPENDED, 0);
      await all.next((e) => e.data.domain?.name === 'plain');
      await mine.next(() => mine.events.filter((x) => x.data.domain?.name === 'instance-0000000a').length === 2);
      expect(mine.events.filter((e) => e.data.domain).map((e) => e.data.domain.name)).toEqual(['instance-0000000a', 'instance-0000000a']);
      const replay = await openSse(`http://127.0.0.1:${port}/events`, { ...alice, 'last-event-id': start });
      try {
        await replay.next(() => replay.events.filter((x) => x.data.domain).length === 2);
        expect(replay.events.filter((e) => e.data.domain).map((e) => e.data.domain.name)).toEqual([
          'instance-0000000a',
          'instance-0000000a',
        ]);
      } finally {
        replay.close();
      }
    } finally {
      mine.close();
      all.close();
    }
  });

  it('a fixed service token (serviceTokenFile) validates as the service user would; once Keystone refuses it, new tokens are 503', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qga-ks-'));
    const ks0 = new FakeKeystone();
    keystones.push(ks0);
    await ks0.start();
    const serviceToken = ks0.issueService();
    writeFileSync(join(dir, 'token'), `${serviceToken}\n`);
    const { as, gw } = await (async () => {
      const h = await build({
        domains: [{ name: 'instance-0000000a', metadata: novaInstance('web-a', A) }],
        config: {
          auth: {
            mode: 'tokens',
            keystone: { url: ks0.url, serviceTokenFile: join(dir, 'token'), roles: { member: ['read'] }, cacheTtlMs: 0 },
          },
        },
      });
      return { ...h, as: (t: string) => (url: string) => h.call('GET', url, undefined, { 'x-auth-token': t }) };
    })();
    expect(names((await as(ks0.issue('alice-project'))('/domains')).body)).toEqual(['instance-0000000a']);
    expect(ks0.issues).toBe(0);
    ks0.revoke(serviceToken);
    const r = await as(ks0.issue('alice-project'))('/domains');
    expect([r.status, r.body.code]).toEqual([503, 'auth_unavailable']);
    expect(JSON.stringify(gw.logs)).not.toContain(serviceToken);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the config takes exactly one of service and serviceTokenFile', () => {
    const base = { url: 'http://127.0.0.1:5000/v3' };
    const service = { username: 'qga-gateway', password: 'x', projectName: 'service' };
    expect(() => parseConfig({ auth: { keystone: base } })).toThrow(/exactly one of service/);
    expect(() => parseConfig({ auth: { keystone: { ...base, service, serviceTokenFile: '/t' } } })).toThrow(/exactly one of service/);
    expect(() => parseConfig({ auth: { keystone: { ...base, service: { ...service, passwordFile: '/p' } } } })).toThrow(
      /exactly one of password/,
    );
    expect(() => parseConfig({ auth: { keystone: { ...base, url: 'http://127.0.0.1:5000/v2.0', service } } })).toThrow(/v3/);
    expect(parseConfig({ auth: { keystone: { ...base, service } } }).auth.keystone).toMatchObject({ cacheTtlMs: 60_000, roles: {} });
  });
});
