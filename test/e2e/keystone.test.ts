// Keystone identities (issue 17) in the real process, against the real Keystone of scripts/keystone.sh (Debian's
// keystone, OpenStack Zed, on 127.0.0.1:5050) and the real guests: guest1 and guest-stopped carry project-a's real id
// in their Nova metadata for the length of the file, guest2 project-b's. Tokens are issued and revoked through
// Keystone's own API (POST and DELETE /v3/auth/tokens), never through the gateway: alice is member of project-a, bob
// of project-b, admin admin of the system and of domain Default. Keystone is started if it is not running and left as
// it was found; the last tests stop it and start it again (with a short token lifetime for the expiry test).
//
// The role mapping gives alice and bob the scopes of every route kind (read through `reader`, the others through
// `member`): their 403 on the other project's guest then comes from the domain check, which the same routes on their
// own guest prove (a 2xx), and not from a scope they lack.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { openSse, type SseClient, type SseEvent } from '../support/sse-client.js';
import { assertProvisioned, guest, virsh, waitFor } from './support/guests.js';
import {
  issueToken,
  keystoneCall,
  keystoneIds,
  keystoneRunning,
  keystoneValidates,
  revokeToken,
  startKeystone,
  stopKeystone,
  type IssuedToken,
  type KeystoneIds,
} from './support/keystone.js';
import { resetGuestNova, setGuestNova } from './support/nova.js';

const g1 = guest((g) => g.name === 'guest1', 'guest1');
const g2 = guest((g) => g.name === 'guest2', 'guest2');
const gStopped = guest((g) => g.name === 'guest-stopped', 'guest-stopped');
const ipOf = (g: { ip: string }) => g.ip.split('/')[0]!;

const EVERY_SCOPE = ['read', 'files:read', 'files:write', 'exec', 'power', 'freeze', 'accounts', 'admin'];
/** alice and bob: `read` only through reader, the rest only through member (so both must count: a union). */
const ROLES = { admin: EVERY_SCOPE, reader: ['read'], member: ['files:read', 'exec', 'admin'] };
/** The main gateway's cache: short, for the revocation test. */
const SHORT_TTL_MS = 3_000;

let ids: KeystoneIds;
let foundRunning = false;
/** Keystone restarted with another token lifetime: it must be restarted again at the end to be as found. */
let expirationChanged = false;
let dir: string;
let auditFile: string;
let passwordFile: string;
const gateways: GatewayProcess[] = [];
const streams: SseClient[] = [];
let gw: GatewayProcess;
const bearer = newToken();
let alice: IssuedToken;
let bob: IssuedToken;
let admin: IssuedToken;
let aliceUnscoped: IssuedToken;
let adminDomain: IssuedToken;

function keystoneSection(extra: Record<string, unknown> = {}) {
  return {
    url: ids.authUrl,
    service: { username: 'qga-gateway', passwordFile, projectName: 'service' },
    cacheTtlMs: SHORT_TTL_MS,
    timeoutMs: 5_000,
    roles: ROLES,
    ...extra,
  };
}

async function gateway(keystone: Record<string, unknown>, more: Record<string, unknown> = {}): Promise<GatewayProcess> {
  const g = await startGateway({
    rawCommands: { enabled: true },
    // Tests send many refused requests from one address on purpose.
    limits: { rateLimit: { max: 0 }, unauthenticated: { max: 0 } },
    auth: {
      mode: 'tokens',
      identities: [{ name: 'ops', tokenSha256: tokenSha256(bearer), scopes: ['read'], domains: [g2.uuid] }],
      keystone,
    },
    ...more,
  });
  gateways.push(g);
  return g;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT';
interface Auth {
  /** X-Auth-Token */
  ks?: string;
  bearer?: string;
  requestId?: string;
}

async function call(g: GatewayProcess, method: Method, path: string, auth: Auth = {}, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (auth.ks !== undefined) headers['x-auth-token'] = auth.ks;
  if (auth.bearer !== undefined) headers.authorization = `Bearer ${auth.bearer}`;
  if (auth.requestId) headers['x-request-id'] = auth.requestId;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${g.url}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // a file's bytes
  }
  return { status: res.status, headers: res.headers, text, json };
}
const ks = (t: IssuedToken | string): Auth => ({ ks: typeof t === 'string' ? t : t.token });
const names = (list: { name: string }[]) => list.map((d) => d.name).sort();

/** One request of every kind of /domains/{d} route a Keystone user could hold the scope of, and what success is. */
function routes(d: string): { method: Method; path: string; body?: unknown; ok: number }[] {
  return [
    { method: 'GET', path: `/domains/${d}`, ok: 200 },
    { method: 'GET', path: `/domains/${d}/network-interfaces`, ok: 200 },
    { method: 'GET', path: `/domains/${d}/agent/ping`, ok: 200 },
    { method: 'GET', path: `/domains/${d}/os`, ok: 200 },
    { method: 'GET', path: `/domains/${d}/fsfreeze`, ok: 200 },
    { method: 'GET', path: `/domains/${d}/files/srv/qga-test/hello.txt`, ok: 200 },
    { method: 'HEAD', path: `/domains/${d}/files/srv/qga-test/hello.txt`, ok: 200 },
    { method: 'POST', path: `/domains/${d}/exec`, body: { path: '/bin/true', wait: { timeoutMs: 30_000 } }, ok: 201 },
    { method: 'POST', path: `/domains/${d}/agent/commands`, body: { execute: 'guest-ping' }, ok: 200 },
    { method: 'POST', path: `/domains/${d}/agent/commands`, body: { execute: 'guest-network-get-interfaces' }, ok: 200 },
    { method: 'POST', path: `/domains/${d}/agent/sync`, ok: 200 },
  ];
}

/** Every route of routes() on `d` is 403 forbidden, and no answer carries anything of `of` (its address, MAC). */
async function expectForbidden(g: GatewayProcess, token: string, d: string, of: { ip: string; mac: string }) {
  for (const r of routes(d)) {
    const a = await call(g, r.method, r.path, ks(token), r.body);
    expect(a.status, `${r.method} ${r.path}`).toBe(403);
    if (r.method !== 'HEAD') {
      expect(a.headers.get('content-type'), `${r.method} ${r.path}`).toMatch(/^application\/problem\+json/);
      expect(a.json.code, `${r.method} ${r.path}`).toBe('forbidden');
    }
    expect(a.text).not.toContain(ipOf(of));
    expect(a.text.toLowerCase()).not.toContain(of.mac);
  }
}

async function expectAllowed(g: GatewayProcess, token: string, d: string) {
  for (const r of routes(d)) {
    const a = await call(g, r.method, r.path, ks(token), r.body);
    expect(a.status, `${r.method} ${r.path}: ${a.text.slice(0, 300)}`).toBe(r.ok);
  }
}

/** Every libvirt domain on the host, from virsh rather than from the gateway. */
function allDomains(): string[] {
  return execFileSync('virsh', ['-q', '-c', 'qemu:///system', 'list', '--all', '--name'], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean)
    .sort();
}

beforeAll(async () => {
  assertProvisioned();
  foundRunning = keystoneRunning();
  if (!foundRunning) startKeystone();
  ids = keystoneIds();
  const a = ids.projects['project-a'];
  const b = ids.projects['project-b'];
  setGuestNova(g1.name, { projectId: a, projectName: 'project-a' });
  setGuestNova(gStopped.name, { projectId: a, projectName: 'project-a' });
  setGuestNova(g2.name, { projectId: b, projectName: 'project-b' });
  alice = await issueToken(ids, 'alice', { project: { id: a } });
  bob = await issueToken(ids, 'bob', { project: { id: b } });
  admin = await issueToken(ids, 'admin', { system: { all: true } });
  aliceUnscoped = await issueToken(ids, 'alice');
  adminDomain = await issueToken(ids, 'admin', { domain: { id: ids.domain.id } });
  // The tokens are what the tests assume: alice's roles include the implied reader, the scopes are as asked.
  expect(alice.body.project?.id).toBe(a);
  expect(alice.body.roles?.map((r) => r.name).sort()).toEqual(['member', 'reader']);
  expect(aliceUnscoped.body.roles).toBeUndefined();

  dir = mkdtempSync(join(tmpdir(), 'qga-e2e-keystone-'));
  auditFile = join(dir, 'audit.log');
  passwordFile = join(dir, 'service-password');
  writeFileSync(passwordFile, `${ids.users['qga-gateway'].password}\n`);
  chmodSync(passwordFile, 0o600);
  gw = await gateway(keystoneSection(), { audit: { destination: auditFile } });
});

afterAll(async () => {
  for (const s of streams) s.close();
  await Promise.all(gateways.map((g) => g.stop()));
  for (const g of [g1, gStopped, g2]) resetGuestNova(g.name);
  // As found: stopped, or running with the default token lifetime.
  if (!foundRunning) stopKeystone();
  else if (expirationChanged || !keystoneRunning()) {
    stopKeystone();
    startKeystone();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('project-scoped tokens: a member reaches its own project only', () => {
  it("alice lists only project A's instances: GET /domains (and its filters) and GET /addresses", async () => {
    const list = await call(gw, 'GET', '/domains', ks(alice));
    expect(list.status).toBe(200);
    expect(names(list.json.domains)).toEqual([g1.name, gStopped.name].sort());
    for (const d of list.json.domains) expect(d.nova.project.id).toBe(ids.projects['project-a']);
    expect((await call(gw, 'GET', `/domains?project=${ids.projects['project-b']}`, ks(alice))).json.domains).toEqual([]);
    expect((await call(gw, 'GET', '/domains?novaName=*', ks(alice))).json.domains.map((d: { name: string }) => d.name).sort()).toEqual(
      [g1.name, gStopped.name].sort(),
    );

    const addresses = await call(gw, 'GET', '/addresses', ks(alice));
    expect(addresses.status).toBe(200);
    // Only the running guest of the project is asked; guest2's address appears nowhere.
    expect(names(addresses.json.domains)).toEqual([g1.name]);
    expect(addresses.json.domains[0].ok).toBe(true);
    expect(addresses.text).toContain(ipOf(g1));
    expect(addresses.text).not.toContain(ipOf(g2));
  });

  it('alice reaches guest1 through every route kind: the interfaces, a file, exec, the raw endpoint', async () => {
    const nics = await call(gw, 'GET', `/domains/${g1.name}/network-interfaces`, ks(alice));
    expect(nics.status).toBe(200);
    expect(nics.json.interfaces.some((i: { mac: string }) => i.mac === g1.mac)).toBe(true);
    const file = await call(gw, 'GET', `/domains/${g1.uuid}/files/srv/qga-test/hello.txt`, ks(alice));
    expect(file.text).toBe(`hello from ${g1.name}\n`);
    await expectAllowed(gw, alice.token, g1.name);
  });

  it('alice gets 403 forbidden on guest2 through every route kind, by name and by UUID, as on a domain that does not exist', async () => {
    await expectForbidden(gw, alice.token, g2.name, g2);
    await expectForbidden(gw, alice.token, g2.uuid, g2);
    // No probing: a domain of no project, and a name no domain has, answer the same.
    for (const d of ['guest-noagent', 'no-such-domain-ks']) {
      const a = await call(gw, 'GET', `/domains/${d}`, ks(alice));
      expect(a.status, d).toBe(403);
      expect(a.json.code).toBe('forbidden');
    }
    // The same routes on guest2 work for the system admin: the 403 is alice's, not the guest's.
    await expectAllowed(gw, admin.token, g2.name);
  });

  it('GET /addresses never shows guest2 to alice, asked for it by name, UUID, project or Nova name', async () => {
    for (const q of [
      `domain=${g2.name}`,
      `domain=${g2.uuid}`,
      `domain=${g1.name},${g2.name}`,
      `project=${ids.projects['project-b']}`,
      `novaName=${encodeURIComponent(g2.nova!.name)}`,
    ]) {
      const a = await call(gw, 'GET', `/addresses?${q}`, ks(alice));
      expect(a.status, q).toBe(200);
      for (const e of a.json.domains) {
        // guest2 may be listed as a name nobody knows (domain_not_found), never with its addresses.
        if (e.uuid === g2.uuid || e.name === g2.name || e.name === g2.uuid) {
          expect(e.ok, q).toBe(false);
          expect(e.interfaces, q).toBeUndefined();
        } else expect(e.name, q).toBe(g1.name);
      }
      // Asked for both, alice gets hers.
      if (q.includes(g1.name)) expect(a.json.domains.find((e: { name: string }) => e.name === g1.name)?.ok, q).toBe(true);
      expect(a.text, q).not.toContain(ipOf(g2));
      expect(a.text.toLowerCase(), q).not.toContain(g2.mac);
      expect(a.text, q).not.toContain(ids.projects['project-b']);
    }
  });

  it("scopes are the union of the token's mapped roles, and nothing beyond them", async () => {
    // read comes from reader only and exec from member only: both held (the routes above), but not files:write,
    // power or metrics, which no role of alice's maps to.
    const put = await fetch(`${gw.url}/domains/${g1.name}/files/tmp/qga-ks-e2e-denied.txt`, {
      method: 'PUT',
      headers: { 'x-auth-token': alice.token, 'content-type': 'application/octet-stream' },
      body: 'no',
    });
    expect(put.status).toBe(403);
    expect(((await put.json()) as { code: string }).code).toBe('forbidden');
    const time = await call(gw, 'PUT', `/domains/${g1.name}/time`, ks(alice), { source: 'host' });
    expect(time.status).toBe(403);
    expect(time.json.code).toBe('forbidden');
    expect((await call(gw, 'GET', '/metrics', ks(alice))).status).toBe(403);
  });

  it('bob is the mirror: guest2 only', async () => {
    const list = await call(gw, 'GET', '/domains', ks(bob));
    expect(names(list.json.domains)).toEqual([g2.name]);
    const addresses = await call(gw, 'GET', '/addresses', ks(bob));
    expect(names(addresses.json.domains)).toEqual([g2.name]);
    expect(addresses.text).toContain(ipOf(g2));
    expect(addresses.text).not.toContain(ipOf(g1));
    const nics = await call(gw, 'GET', `/domains/${g2.uuid}/network-interfaces`, ks(bob));
    expect(nics.json.interfaces.some((i: { mac: string }) => i.mac === g2.mac)).toBe(true);
    await expectAllowed(gw, bob.token, g2.name);
    await expectForbidden(gw, bob.token, g1.name, g1);
    await expectForbidden(gw, bob.token, g1.uuid, g1);
    await expectForbidden(gw, bob.token, gStopped.name, gStopped);
  });

  it("GET /events: alice's stream carries guest1's events, never guest2's; bob's the mirror", async () => {
    const open = async (headers: Record<string, string>) => {
      const s = await openSse(`${gw.url}/events?types=domain`, headers);
      expect(s.status, s.text).toBe(200);
      streams.push(s);
      return s;
    };
    const all = await open({ 'x-auth-token': admin.token });
    const a = await open({ 'x-auth-token': alice.token });
    const b = await open({ 'x-auth-token': bob.token });
    await waitFor('the streams to open', async () => [all, a, b].every((s) => s.lastId !== undefined), 5_000, 50);
    // Suspended and resumed in turn (libvirt's lifecycle events): each stream's last event of its own guest comes
    // after every event of the other's, so once it has come the other's would have too.
    try {
      for (const g of [g2, g1, g2, g1]) {
        virsh('suspend', g.name);
        virsh('resume', g.name);
      }
    } finally {
      for (const g of [g1, g2]) if (virsh('domstate', g.name).trim() === 'paused') virsh('resume', g.name);
    }
    const resumed = (g: { name: string }) => (e: SseEvent) => e.data.domain?.name === g.name && e.data.event === 'resumed';
    const count = (s: SseClient, g: { name: string }) => s.events.filter((e) => e.data.domain?.name === g.name).length;
    await waitFor('every event on the admin stream', async () => all.events.filter(resumed(g1)).length === 2, 15_000, 50);
    await waitFor("alice's last event", async () => a.events.filter(resumed(g1)).length === 2, 15_000, 50);
    await waitFor("bob's last event", async () => b.events.filter(resumed(g2)).length === 2, 15_000, 50);
    expect(count(all, g2)).toBeGreaterThanOrEqual(4);
    expect(count(a, g1)).toBeGreaterThanOrEqual(4);
    expect(count(a, g2)).toBe(0);
    expect(count(b, g2)).toBeGreaterThanOrEqual(4);
    expect(count(b, g1)).toBe(0);
  });

  it('follows an instance that Nova moves to the other project (the metadata rewritten while the gateway runs)', async () => {
    try {
      setGuestNova(g1.name, { projectId: ids.projects['project-b'], projectName: 'project-b' });
      await waitFor(
        'bob to see guest1',
        async () => names((await call(gw, 'GET', '/domains', ks(bob))).json.domains).includes(g1.name),
        15_000,
        200,
      );
      expect((await call(gw, 'GET', `/domains/${g1.name}/network-interfaces`, ks(bob))).status).toBe(200);
      expect((await call(gw, 'GET', `/domains/${g1.name}/network-interfaces`, ks(alice))).status).toBe(403);
      expect(names((await call(gw, 'GET', '/domains', ks(alice))).json.domains)).toEqual([gStopped.name]);
    } finally {
      setGuestNova(g1.name, { projectId: ids.projects['project-a'], projectName: 'project-a' });
    }
    await waitFor(
      'alice to see guest1 again',
      async () => (await call(gw, 'GET', `/domains/${g1.name}`, ks(alice))).status === 200,
      15_000,
      200,
    );
    expect((await call(gw, 'GET', `/domains/${g1.name}`, ks(bob))).status).toBe(403);
  });
});

describe('other scopes', () => {
  it('a system-scoped admin reaches every domain', async () => {
    const list = await call(gw, 'GET', '/domains', ks(admin));
    expect(list.status).toBe(200);
    expect(names(list.json.domains)).toEqual(allDomains());
    for (const g of [g1, g2]) {
      const nics = await call(gw, 'GET', `/domains/${g.name}/network-interfaces`, ks(admin));
      expect(nics.json.interfaces.some((i: { mac: string }) => i.mac === g.mac)).toBe(true);
    }
    const addresses = await call(gw, 'GET', '/addresses', ks(admin));
    expect(names(addresses.json.domains)).toEqual(expect.arrayContaining([g1.name, g2.name, 'guest-noagent']));
    expect((await call(gw, 'GET', '/domains/guest-noagent', ks(admin))).status).toBe(200);
  });

  it('an unscoped token reaches nothing: it carries no role, so no scope, and no domain', async () => {
    // Lists: refused (no scope), or empty: never a domain.
    for (const path of ['/domains', '/addresses']) {
      const a = await call(gw, 'GET', path, ks(aliceUnscoped));
      expect([200, 403], path).toContain(a.status);
      if (a.status === 200) expect(a.json.domains, path).toEqual([]);
      else expect(a.json.code).toBe('forbidden');
    }
    for (const g of [g1, g2]) {
      for (const path of [`/domains/${g.name}`, `/domains/${g.uuid}/network-interfaces`]) {
        const a = await call(gw, 'GET', path, ks(aliceUnscoped));
        expect(a.status, path).toBe(403);
        expect(a.json.code).toBe('forbidden');
      }
    }
  });

  it('a domain-scoped token, scopes mapped, reaches no domain by default: empty lists, 403 on every domain', async () => {
    const list = await call(gw, 'GET', '/domains', ks(adminDomain));
    expect(list.status).toBe(200);
    expect(list.json.domains).toEqual([]);
    const addresses = await call(gw, 'GET', '/addresses', ks(adminDomain));
    expect(addresses.status).toBe(200);
    expect(addresses.json.domains).toEqual([]);
    for (const d of [g1.name, g2.uuid, 'guest-noagent']) {
      const a = await call(gw, 'GET', `/domains/${d}/network-interfaces`, ks(adminDomain));
      expect(a.status, d).toBe(403);
      expect(a.json.code).toBe('forbidden');
    }
  });

  it('roles map to nothing unless configured; unscopedDomains grants domains to domain-scoped tokens', async () => {
    const other = await gateway({
      url: ids.authUrl,
      service: { username: 'qga-gateway', password: ids.users['qga-gateway'].password, projectName: 'service' },
      roles: { admin: ['read'] },
      unscopedDomains: [g1.name],
    });
    // alice's member and reader map to nothing here: no scope at all, even on her own project's guest.
    for (const path of ['/domains', `/domains/${g1.name}`]) {
      const a = await call(other, 'GET', path, ks(alice));
      expect(a.status, path).toBe(403);
      expect(a.json.code).toBe('forbidden');
    }
    const list = await call(other, 'GET', '/domains', ks(adminDomain));
    expect(names(list.json.domains)).toEqual([g1.name]);
    expect((await call(other, 'GET', `/domains/${g1.uuid}/network-interfaces`, ks(adminDomain))).status).toBe(200);
    expect((await call(other, 'GET', `/domains/${g2.name}`, ks(adminDomain))).status).toBe(403);
    // read only: exec is refused even where the domain is allowed.
    expect((await call(other, 'POST', `/domains/${g1.name}/exec`, ks(adminDomain), { path: '/bin/true' })).status).toBe(403);
    expect(names((await call(other, 'GET', '/domains', ks(admin))).json.domains)).toEqual(allDomains());
  });

  it('bearer-token identities keep working beside Keystone, each header to its own kind of token', async () => {
    const list = await call(gw, 'GET', '/domains', { bearer });
    expect(list.status).toBe(200);
    expect(names(list.json.domains)).toEqual([g2.name]);
    expect((await call(gw, 'GET', `/domains/${g2.name}/network-interfaces`, { bearer })).status).toBe(200);
    expect((await call(gw, 'GET', `/domains/${g1.name}/network-interfaces`, { bearer })).status).toBe(403);
    // A gateway token is no Keystone token.
    const swapped = await call(gw, 'GET', '/domains', ks(bearer));
    expect(swapped.status).toBe(401);
    expect(swapped.json.code).toBe('unauthenticated');
  });

  it('refuses what Keystone does not vouch for: 401 unauthenticated', async () => {
    for (const bad of ['garbage', 'gAAAAAgarbage-not-a-fernet-token', `${alice.token.slice(0, -4)}AAAA`]) {
      const a = await call(gw, 'GET', '/domains', ks(bad));
      expect(a.status, bad).toBe(401);
      expect(a.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(a.json.code, bad).toBe('unauthenticated');
    }
    expect((await call(gw, 'GET', `/domains/${g1.name}`)).status).toBe(401);
  });

  it('audit lines name the Keystone user, project and roles; no log or audit line holds a token', async () => {
    const denied = `ks-e2e-denied-${Date.now()}`;
    const change = `ks-e2e-change-${Date.now()}`;
    expect((await call(gw, 'GET', `/domains/${g2.name}/network-interfaces`, { ...ks(alice), requestId: denied })).status).toBe(403);
    const exec = await call(gw, 'POST', `/domains/${g1.name}/exec`, { ...ks(alice), requestId: change }, { path: '/bin/true' });
    expect(exec.status).toBe(201);
    const line = (id: string): Record<string, unknown> | undefined => {
      let text = '';
      try {
        text = readFileSync(auditFile, 'utf8');
      } catch {
        return undefined;
      }
      const found = text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.requestId === id);
      return found;
    };
    await waitFor('the audit lines', async () => line(denied) !== undefined && line(change) !== undefined, 10_000, 100);
    for (const [id, outcome] of [
      [denied, 'denied'],
      [change, 'ok'],
    ] as const) {
      const l = line(id)!;
      expect(l.outcome).toBe(outcome);
      const text = JSON.stringify(l);
      expect(text, id).toMatch(new RegExp(`alice|${ids.users.alice.id}`));
      expect(text, id).toMatch(new RegExp(`project-a|${ids.projects['project-a']}`));
      expect(text, id).toContain('member');
      expect(text, id).toContain('reader');
    }
    const everything = `${gw.logs.join('\n')}\n${readFileSync(auditFile, 'utf8')}`;
    for (const t of [alice, bob, admin, aliceUnscoped, adminDomain]) expect(everything).not.toContain(t.token);
    expect(everything).not.toContain(ids.users['qga-gateway'].password);
  });
});

describe('the validation cache', () => {
  it(`a token revoked in Keystone stops working within cacheTtlMs (${SHORT_TTL_MS} ms here)`, async () => {
    const t = await issueToken(ids, 'alice', { project: { id: ids.projects['project-a'] } });
    expect((await call(gw, 'GET', `/domains/${g1.name}`, ks(t))).status).toBe(200);
    const revokedAt = Date.now();
    await revokeToken(ids, t.token);
    expect(await keystoneValidates(ids, t.token)).not.toBe(200);
    // Poll until the gateway refuses it; until then only the cached 200 is allowed, never a 5xx.
    let last: Answer | undefined;
    const seen = new Set<number>();
    while (Date.now() < revokedAt + SHORT_TTL_MS + 10_000) {
      last = await call(gw, 'GET', `/domains/${g1.name}`, ks(t));
      seen.add(last.status);
      if (last.status !== 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(last?.status).toBe(401);
    expect(last?.json.code).toBe('unauthenticated');
    expect([...seen].sort()).toEqual(seen.has(200) ? [200, 401] : [401]);
    // A token never seen before, revoked before its first use: refused at once.
    const u = await issueToken(ids, 'bob', { project: { id: ids.projects['project-b'] } });
    await revokeToken(ids, u.token);
    expect((await call(gw, 'GET', `/domains/${g2.name}`, ks(u))).status).toBe(401);
  });
});

/**
 * A stand-in between the gateway and the real Keystone: it passes everything through, except the token validations
 * (GET /v3/auth/tokens) while a fault is set: no answer at all, a 500, or a 200 that is not a token.
 */
type Fault = 'none' | 'hang' | 'error' | 'not-json' | 'not-a-token';
async function keystoneProxy(target: string) {
  const up = new URL(target);
  let fault: Fault = 'none';
  const validations: string[] = [];
  const server = http.createServer((req, res) => {
    const validation = req.method === 'GET' && (req.url ?? '').startsWith(`${up.pathname.replace(/\/$/, '')}/auth/tokens`);
    if (validation) validations.push(String(req.headers['x-subject-token'] ?? ''));
    if (validation && fault === 'hang') return; // held until the test closes the server
    if (validation && fault === 'error') {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(
        '{"error": {"code": 500, "message": "An unexpected error prevented the server from fulfilling your request.", "title": "Internal Server Error"}}',
      );
      return;
    }
    if (validation && (fault === 'not-json' || fault === 'not-a-token')) {
      res.writeHead(200, { 'content-type': 'application/json', 'x-subject-token': String(req.headers['x-subject-token'] ?? '') });
      res.end(fault === 'not-json' ? '<html><body>502 Bad Gateway</body></html>' : '{"token": {"expires_at": "tomorrow"}}');
      return;
    }
    const forward = http.request(
      { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers, agent: false },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${up.pathname}`,
    validations,
    setFault(f: Fault) {
      fault = f;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('Keystone unavailable', () => {
  it('a cached validation asks Keystone once; a Keystone that hangs, fails or answers no token: 503 auth_unavailable, never let through', async () => {
    const proxy = await keystoneProxy(ids.authUrl);
    try {
      const g = await gateway(keystoneSection({ url: proxy.url, cacheTtlMs: 60_000, timeoutMs: 1_000 }));
      const cached = await issueToken(ids, 'alice', { project: { id: ids.projects['project-a'] } });
      for (let i = 0; i < 3; i++) expect((await call(g, 'GET', `/domains/${g1.name}`, ks(cached))).status).toBe(200);
      expect(proxy.validations.filter((t) => t === cached.token)).toHaveLength(1);

      for (const fault of ['hang', 'error', 'not-json', 'not-a-token'] as const) {
        const fresh = await issueToken(ids, 'alice', { project: { id: ids.projects['project-a'] } });
        proxy.setFault(fault);
        const logsBefore = g.logs.length;
        const a = await call(g, 'GET', `/domains/${g1.name}`, ks(fresh));
        expect(a.status, fault).toBe(503);
        expect(a.json.code, fault).toBe('auth_unavailable');
        expect(Number(a.headers.get('retry-after')), fault).toBeGreaterThan(0);
        expect(proxy.validations, fault).toContain(fresh.token);
        // The cached token does not need Keystone.
        expect((await call(g, 'GET', `/domains/${g1.name}`, ks(cached))).status, fault).toBe(200);
        // An answer that cannot be read is logged (warn or worse, naming Keystone).
        if (fault === 'not-json' || fault === 'not-a-token') {
          const lines = g.logs.slice(logsBefore).filter((l) => /keystone/i.test(l) && /"level":(4|5|6)0/.test(l));
          expect(lines.length, `${fault}: ${g.logs.slice(logsBefore).join('\n')}`).toBeGreaterThan(0);
        }
        proxy.setFault('none');
        // Unavailability is not remembered against the token: it works as soon as Keystone answers.
        expect((await call(g, 'GET', `/domains/${g1.name}`, ks(fresh))).status, fault).toBe(200);
      }
    } finally {
      await proxy.close();
    }
  });

  it('Keystone stopped: 503 for a token not in the cache; one validated just before works until its entry expires, then 503', async () => {
    const ttl = 15_000;
    const g = await gateway(keystoneSection({ cacheTtlMs: ttl }));
    const cached = await issueToken(ids, 'alice', { project: { id: ids.projects['project-a'] } });
    const fresh = await issueToken(ids, 'bob', { project: { id: ids.projects['project-b'] } });
    const validatedFrom = Date.now();
    expect((await call(g, 'GET', `/domains/${g1.name}/network-interfaces`, ks(cached))).status).toBe(200);
    stopKeystone();
    try {
      await expect(keystoneCall(ids.authUrl, 'GET', '')).rejects.toThrow();
      const a = await call(g, 'GET', `/domains/${g2.name}`, ks(fresh));
      expect(a.status).toBe(503);
      expect(a.json.code).toBe('auth_unavailable');
      expect(Number(a.headers.get('retry-after'))).toBeGreaterThan(0);
      // Not a timed assertion: the check below needs the entry to be alive, which the clock must show first.
      if (Date.now() - validatedFrom > ttl - 3_000)
        throw new Error(`stopping Keystone took too long (${Date.now() - validatedFrom} ms) for a ${ttl} ms cache entry: inconclusive`);
      expect((await call(g, 'GET', `/domains/${g1.name}/network-interfaces`, ks(cached))).status).toBe(200);
      // Then its entry expires, and Keystone cannot be asked again: 503, not 401, not 200.
      let last: Answer | undefined;
      while (Date.now() < validatedFrom + ttl + 15_000) {
        last = await call(g, 'GET', `/domains/${g1.name}`, ks(cached));
        if (last.status !== 200) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(last?.status).toBe(503);
      expect(last?.json.code).toBe('auth_unavailable');
      expect(Number(last?.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      // Started again with a short token lifetime, for the next test (afterAll puts the default back).
      expirationChanged = true;
      startKeystone({ KEYSTONE_TOKEN_EXPIRATION: '12' });
    }
    // Back: the token that got 503 is validated now.
    expect((await call(g, 'GET', `/domains/${g2.name}`, ks(fresh))).status).toBe(200);
    expect((await call(g, 'GET', `/domains/${g1.name}`, ks(cached))).status).toBe(200);
  });

  it("a validation is never kept past the token's expires_at: an expired token is 401 long before cacheTtlMs", async () => {
    const ttl = 300_000;
    const g = await gateway(keystoneSection({ cacheTtlMs: ttl }));
    const t = await issueToken(ids, 'alice', { project: { id: ids.projects['project-a'] } });
    const lifetime = t.expiresAt.getTime() - Date.now();
    if (lifetime > 60_000) throw new Error(`Keystone issued a token for ${lifetime} ms: not started with KEYSTONE_TOKEN_EXPIRATION`);
    expect((await call(g, 'GET', `/domains/${g1.name}`, ks(t))).status).toBe(200);
    let last: Answer | undefined;
    while (Date.now() < t.expiresAt.getTime() + 10_000) {
      last = await call(g, 'GET', `/domains/${g1.name}`, ks(t));
      if (last.status !== 200) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    // (A 503 here would mean the gateway's own service token, which this Keystone also issued for 12 s, was not
    // renewed.)
    expect(last?.status, last?.text).toBe(401);
    expect(last?.json.code).toBe('unauthenticated');
    // Keystone agrees that it has expired.
    expect(await keystoneValidates(ids, t.token)).not.toBe(200);
    // The gateway's service token has expired by now too: it authenticates again, and a new token is validated.
    const again = await issueToken(ids, 'alice', { project: { id: ids.projects['project-a'] } });
    const a = await call(g, 'GET', `/domains/${g1.name}`, ks(again));
    expect(a.status, a.text).toBe(200);
  });
});
