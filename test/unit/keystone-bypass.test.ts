// Ways around the Keystone identities' guard rails (src/auth/keystone/, issue 17), each found in review and kept as
// a test: what a Keystone token (or a caller without one) must not be able to do, against the fake libvirtd and the
// fake Keystone of test/support/fake-keystone.ts.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeKeystone, type TokenKind } from '../support/fake-keystone.js';
import { buildWithKeystone } from '../support/keystone-gateway.js';
import type { AgentHandler } from '../support/fake-libvirtd.js';
import { GuestControlAgent } from '../support/guest-control-agent.js';
import { waitFor } from '../support/fake-libvirtd.js';
import { openSse } from '../support/sse-client.js';
import { LifecycleEvent } from '../../src/libvirt/protocol.js';
import { KeystoneIdentities } from '../../src/auth/keystone/identities.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const setup = (keystone: Record<string, unknown> = {}, config: Record<string, unknown> = {}, agent?: AgentHandler) =>
  buildWithKeystone({ keystone, config, ...(agent ? { agent } : {}) });

/** Keystone's validation bodies of `kind`, changed by `edit` (what a real Keystone could answer, recorded ones aside). */
function editBodies(kind: TokenKind, edit: (token: Record<string, any>) => void): void {
  const recordedBody = FakeKeystone.bodyOf.bind(FakeKeystone);
  vi.spyOn(FakeKeystone, 'bodyOf').mockImplementation((k, expiresAt) => {
    const body = recordedBody(k, expiresAt);
    if (k === kind) edit(body.token);
    return body;
  });
}

describe('Keystone identities: ways around the guard rails', () => {
  it('a role named like a member of Object.prototype (constructor, toString, __proto__) is a role mapped to nothing, not a 500', async () => {
    const { ks, as } = await setup();
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      editBodies('alice-project', (t) => t.roles.push({ id: `id-${name}`, name }));
      const r = await as(ks.issue('alice-project'))('GET', '/domains');
      expect([name, r.status, r.body.domains?.map((d: { name: string }) => d.name)]).toEqual([name, 200, ['instance-0000000a']]);
      vi.restoreAllMocks();
    }
  });

  it('a validation that fails without an Error is refused (500), never taken for a pass by the callback-style hook', async () => {
    const { ks, as } = await setup();
    vi.spyOn(KeystoneIdentities.prototype, 'identify').mockImplementation(() => Promise.reject(undefined));
    for (const url of ['/addresses', '/domains', '/domains/instance-0000000b']) {
      const r = await as(ks.issue('alice-project'))('GET', url);
      expect([url, r.status, r.body.code]).toEqual([url, 500, 'internal_error']);
    }
  });
});

describe('Keystone identities: the validation cache and Keystone faults', () => {
  // An anonymous caller could otherwise make a user's cached token 503 while Keystone is down.
  it('tokens Keystone refuses do not push validated ones out of the validation cache', async () => {
    const { ks, as, call } = await setup({ cacheMaxEntries: 3 });
    const alice = as(ks.issue('alice-project'));
    expect((await alice('GET', '/domains')).status).toBe(200);
    // Anybody can send Fernet-shaped garbage: each one is asked of Keystone once, refused, and kept as refused.
    for (let i = 0; i < 5; i++) {
      const r = await call('GET', '/domains', undefined, { 'x-auth-token': `gAAAAAB${String(i).repeat(150)}` });
      expect(r.status).toBe(401);
    }
    await ks.stop();
    const r = await alice('GET', '/domains');
    expect([r.status, r.body.code]).toEqual([200, undefined]);
  });

  // Not fixed (a trade-off for the maintainers): refusing an uncached token from an address past its limit would also
  // refuse a valid one behind a shared address, which the refusal limit promises never to do. it.fails: passes while
  // the problem is there.
  it.fails('an address past its refusal limit no longer makes the gateway ask Keystone about each new token it sends', async () => {
    const { ks, call } = await setup({}, { limits: { rateLimit: { max: 0 }, unauthenticated: { max: 3, timeWindowMs: 60_000 } } });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++)
      statuses.push((await call('GET', '/domains', undefined, { 'x-auth-token': `gAAAAAB${String(i % 10).repeat(140)}${i}` })).status);
    expect(statuses.filter((s) => s === 429).length).toBe(17);
    expect(ks.validations).toBeLessThanOrEqual(4);
  });

  it("a 503 tells an anonymous caller nothing of Keystone's address, the service user or its policy (the log has it)", async () => {
    const { ks, as, gw } = await setup({ service: { username: 'qga-gateway', password: 'wrong', projectName: 'service' } });
    const refused = await as(ks.issue('alice-project'))('GET', '/domains');
    expect([refused.status, refused.body.code]).toEqual([503, 'auth_unavailable']);
    expect(refused.body.detail).not.toContain('qga-gateway');
    expect(gw.logs.some((l) => JSON.stringify(l).includes("refused the gateway's service user 'qga-gateway'"))).toBe(true);
    const port = new URL(ks.url).port;
    await ks.stop();
    const down = await as(`gAAAAAB${'x'.repeat(150)}`)('GET', '/domains');
    expect([down.status, down.body.code]).toEqual([503, 'auth_unavailable']);
    expect(down.raw).not.toContain(port);
    expect(down.raw).not.toContain('127.0.0.1');
    expect(gw.logs.some((l) => JSON.stringify(l).includes(`127.0.0.1:${port}`))).toBe(true);
  });
});

describe('Keystone identities: who is who', () => {
  // LDAP's or a federation's user names need not be unique; Keystone's user ids are.
  it("two Keystone users whose names read the same are two identities: one does not see the other's processes", async () => {
    const { ks, as } = await setup({ roles: { member: ['read', 'exec'] } }, {}, new GuestControlAgent().handler);
    // Another user of project A, with alice's name and domain but its own id: Keystone's user ids are what is unique.
    editBodies('bob-project', (t) => {
      const alice = FakeKeystone.bodyOf('alice-project', Date.parse(t.expires_at)).token as Record<string, any>;
      t.user = { ...alice.user, id: 'f'.repeat(32) };
      t.project = alice.project;
    });
    const alice = as(ks.issue('alice-project'));
    const other = as(ks.issue('bob-project'));
    expect((await other('GET', '/domains')).body.domains.map((d: { name: string }) => d.name)).toEqual(['instance-0000000a']);
    const started = await alice('POST', '/domains/instance-0000000a/exec', { path: '/bin/true' });
    expect(started.status).toBe(201);
    expect((await alice('GET', `/domains/instance-0000000a/exec/${started.body.pid}`)).status).toBe(200);
    const peek = await other('GET', `/domains/instance-0000000a/exec/${started.body.pid}`);
    expect([peek.status, peek.body.code]).toEqual([404, 'process_not_found']);
  });
});

describe('Keystone tokens in the URL', () => {
  it("a JWS token (Keystone's token provider jws: a JWT signed ES256) in the path or the query is refused like a Fernet one", async () => {
    const { call, gw } = await setup();
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const jws = [
      b64({ alg: 'ES256', typ: 'JWT' }),
      b64({ sub: '6feaa76623c74b869c42293002b38b6d', iat: 1796657571, exp: 1796661171, openstack_methods: ['password'] }),
      Buffer.alloc(64, 7).toString('base64url'),
    ].join('.');
    expect((await call('GET', '/domains', undefined, { 'x-auth-token': jws })).status).toBe(401); // taken as a token, asked of Keystone
    for (const url of [`/healthz?t=${jws}`, `/domains/${jws}`, `/domains/instance-0000000a/files/tmp/${jws}`]) {
      const r = await call('GET', url);
      expect([url, r.status, r.body.code]).toEqual([url, 400, 'invalid_request']);
    }
    expect(JSON.stringify([gw.logs, gw.audit])).not.toContain(jws.split('.')[1]);
    // The shape is looked for in linear time: a URL made of eyJ... over and over is refused or let through at once.
    const started = performance.now();
    for (const url of [`/healthz?t=${'eyJ'.repeat(4000)}`, `/domains/${'eyJ'.repeat(2000)}.${'eyJ'.repeat(2000)}`])
      expect((await call('GET', url)).status).toBeLessThan(500);
    expect(performance.now() - started).toBeLessThan(150);
  });
});

describe('GET /events for a project-scoped token: what it must still see', () => {
  // The domain's project is looked up when its event is delivered, and a deleted instance (Nova: destroy, then
  // undefine) no longer has XML by then: its last events go to the project its metadata named when last read.
  it("a project's member sees its instance stopped and undefined when it is deleted", async () => {
    const h = await setup();
    await h.gw.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (h.gw.app.server.address() as { port: number }).port;
    const mine = await openSse(`http://127.0.0.1:${port}/events`, { 'x-auth-token': h.ks.issue('alice-project') });
    const all = await openSse(`http://127.0.0.1:${port}/events`, { 'x-auth-token': h.ks.issue('admin-system') });
    const other = await openSse(`http://127.0.0.1:${port}/events`, { 'x-auth-token': h.ks.issue('bob-project') });
    try {
      await waitFor(() => h.gw.gateway.events!.streamCount === 3, 2000, 'three streams');
      h.fake.emitLifecycle('instance-0000000a', LifecycleEvent.SUSPENDED, 0);
      await mine.next((e) => e.data.domain?.name === 'instance-0000000a');
      h.fake.setState('instance-0000000a', 5);
      h.fake.emitLifecycle('instance-0000000a', LifecycleEvent.STOPPED, 0);
      h.fake.emitLifecycle(h.fake.removeDomain('instance-0000000a'), LifecycleEvent.UNDEFINED, 0);
      await all.next((e) => e.data.event === 'undefined');
      await mine.next((e) => e.data.event === 'undefined', 1000);
      expect(mine.events.filter((e) => e.data.domain).map((e) => e.data.event)).toEqual(['suspended', 'stopped', 'undefined']);
      // The last owner's, nobody else's: another project's stream got none of them (a B event after them arrives first).
      h.fake.emitLifecycle('instance-0000000b', LifecycleEvent.SUSPENDED, 0);
      await other.next((e) => e.data.domain?.name === 'instance-0000000b');
      expect(other.events.filter((e) => e.data.domain?.name === 'instance-0000000a')).toEqual([]);
    } finally {
      mine.close();
      all.close();
      other.close();
    }
  });
});
