// Several libvirt hosts behind one gateway: two fake libvirtds, one of which has a domain of the same name (and
// one of the same UUID) as the other. Lookup across hosts, host:name qualification, 409 for an ambiguous
// name, a host that goes down, per-host queues, and identities that see only some hosts.
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { Program } from '../../src/libvirt/protocol.js';
import { waitFor, type FakeLibvirtd } from '../support/fake-libvirtd.js';
import { build, request } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';

const SHARED_UUID = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
let alpha: FakeLibvirtd | null = null;
let beta: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;

async function setup(overrides: Record<string, unknown> = {}) {
  const domains = (only: string) => ['web1', only, { name: 'twin', uuid: SHARED_UUID }];
  ({ fake: alpha } = await build({ domains: domains('only-alpha'), gateway: false }));
  const hBeta = await build({ libvirtd: { tcp: true }, domains: domains('only-beta'), gateway: false });
  beta = hBeta.fake;
  // Started through the harness built last: closed before either fake stops.
  gw = await hBeta.startGateway(
    {
      ...overrides,
      libvirt: {
        hosts: [
          { name: 'alpha', uri: alpha.uri },
          { name: 'beta', uri: beta.uri },
        ],
      },
    },
    { uri: 'qemu:///system' },
  );
  // Every connection of both hosts, not just the first (startTestGateway waits for one).
  await waitFor(() => gw!.gateway.hosts.list.every((h) => h.pool.up === h.pool.size), 3000, 'all connections up');
  return gw;
}

const get = (url: string, headers: Record<string, string> = {}) => request(gw!, 'GET', url, undefined, headers);

describe('several libvirt hosts', () => {
  it('lists each host with its state, and every domain once per host with its host', async () => {
    await setup();
    const hosts = await get('/hosts');
    expect(hosts.status).toBe(200);
    expect(hosts.body.hosts).toEqual([
      expect.objectContaining({ name: 'alpha', transport: 'unix', state: 'up', connectionsUp: 2, connections: 2, lastError: null }),
      expect.objectContaining({ name: 'beta', transport: 'tcp', state: 'up', connectionsUp: 2 }),
    ]);
    const list = await get('/domains');
    expect(list.status).toBe(200);
    expect(list.body.unavailableHosts).toEqual([]);
    expect(list.body.domains.map((d: { host: string; name: string }) => `${d.host}:${d.name}`)).toEqual([
      'alpha:only-alpha',
      'beta:only-beta',
      'alpha:twin',
      'beta:twin',
      'alpha:web1',
      'beta:web1',
    ]);
  });

  it('resolves a name found on one host, and answers 409 with the qualified candidates for one on two', async () => {
    await setup();
    const one = await get('/domains/only-beta');
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ host: 'beta', name: 'only-beta' });

    const twice = await get('/domains/web1/agent/ping');
    expect(twice.status).toBe(409);
    expect(twice.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(twice.body).toMatchObject({ code: 'domain_ambiguous', candidates: ['alpha:web1', 'beta:web1'] });
    expect(twice.body.detail).toMatch(/alpha:web1, beta:web1/);
    // The same UUID on both hosts is just as ambiguous.
    expect((await get(`/domains/${SHARED_UUID}`)).body).toMatchObject({
      code: 'domain_ambiguous',
      candidates: ['alpha:twin', 'beta:twin'],
    });
    expect(alpha!.agentCommandCount + beta!.agentCommandCount).toBe(0);
  });

  it('host:name and host:uuid pick the host; the agent command goes to that host only', async () => {
    await setup();
    const before = { a: alpha!.agentCommandCount, b: beta!.agentCommandCount };
    const ping = await get('/domains/beta:web1/agent/ping');
    expect(ping.status).toBe(200);
    expect(ping.body.domain).toEqual({ host: 'beta', name: 'web1', uuid: beta!.domain('web1').uuid });
    expect(alpha!.agentCommandCount).toBe(before.a);
    expect(beta!.agentCommandCount).toBeGreaterThan(before.b);

    expect((await get(`/domains/alpha:${SHARED_UUID}`)).body).toMatchObject({ host: 'alpha', name: 'twin', uuid: SHARED_UUID });
    expect((await get(`/domains/alpha:${SHARED_UUID.toUpperCase()}`)).body).toMatchObject({ host: 'alpha' });
    const wrongHost = await get('/domains/alpha:only-beta');
    expect(wrongHost.status).toBe(404);
    expect(wrongHost.body).toMatchObject({ code: 'domain_not_found' });
    expect(wrongHost.body.detail).toMatch(/on host alpha/);
    // A prefix that is no host's name is part of the domain name.
    expect((await get('/domains/gamma:web1')).body).toMatchObject({ code: 'domain_not_found' });
  });

  it('keeps one agent queue per host and domain: the same UUID on two hosts does not share a queue', async () => {
    await setup();
    await get('/domains/alpha:twin/agent/ping'); // capabilities known: the next ping is one agent call
    const gate = alpha!.holdReplies((call) => call.program === Program.QEMU);
    const onAlpha = gw!.app.inject({ method: 'GET', url: `/domains/alpha:twin/agent/ping` });
    await gate.waitUntilHeld(1, 2000);
    // beta's twin has the same UUID but its own queue: it answers while alpha's is busy.
    const onBeta = await get('/domains/beta:twin/agent/ping');
    expect(onBeta.status).toBe(200);
    expect(gw!.gateway.agent.queueDepth({ host: 'alpha', name: 'twin', uuid: SHARED_UUID, id: 1 })).toBe(1);
    expect(gw!.gateway.agent.queueDepth({ host: 'beta', name: 'twin', uuid: SHARED_UUID, id: 1 })).toBe(0);
    gate.release();
    expect((await onAlpha).statusCode).toBe(200);
  });

  it("after one host's events come back, the address watcher looks again at that host's domains only", async () => {
    await setup({ events: { addressesPollMs: 600_000 } });
    onTestFinished(() => void vi.restoreAllMocks());
    const directory = gw!.gateway.domains;
    const watcher = gw!.gateway.events!.addresses;
    const discovered: (string | undefined)[] = [];
    const listed: (string | undefined)[] = [];
    const discover = watcher.discover.bind(watcher);
    vi.spyOn(watcher, 'discover').mockImplementation((host) => {
      discovered.push(host);
      return discover(host);
    });
    const list = directory.list.bind(directory);
    vi.spyOn(directory, 'list').mockImplementation((signal, host) => {
      listed.push(host);
      return list(signal, host);
    });
    alpha!.dropClients();
    const pool = gw!.gateway.hosts.get('alpha')!.pool;
    await waitFor(() => pool.up === 0 || !pool.eventsSubscribed, 3000, "alpha's connections lost");
    await waitFor(() => pool.eventsSubscribed && listed.length > 0, 3000, "alpha's events back and its domains listed");
    // With every host looked at for each host coming back, 30 hosts restarting together would cost 30 x 30 lists.
    expect(discovered).toEqual(['alpha']);
    expect(listed).toEqual(['alpha']);
    const { domains, failed } = await list(undefined, 'alpha');
    expect(domains.map((d) => `${d.host}:${d.name}`)).toEqual(['alpha:only-alpha', 'alpha:twin', 'alpha:web1']);
    expect(failed).toEqual([]);
  });

  it('a host that is down makes only its own domains unavailable', async () => {
    await setup();
    await beta!.stop();
    beta = null;
    await waitFor(() => gw!.gateway.hosts.get('beta')!.pool.up === 0, 3000, 'beta down');

    const hosts = await get('/hosts');
    expect(hosts.body.hosts[1]).toMatchObject({ name: 'beta', state: 'down', connectionsUp: 0 });
    expect(hosts.body.hosts[1].lastError).toEqual(expect.any(String));
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.hosts.map((h: { state: string }) => h.state)).toEqual(['up', 'down']);

    const list = await get('/domains');
    expect(list.status).toBe(200);
    expect(list.body.domains.every((d: { host: string }) => d.host === 'alpha')).toBe(true);
    expect(list.body.unavailableHosts).toEqual([expect.objectContaining({ host: 'beta', code: 'libvirt_unavailable' })]);

    // Found on alpha: answered. Not found on alpha while beta is down: it may be on beta.
    expect((await get('/domains/only-alpha/agent/ping')).status).toBe(200);
    const maybeOnBeta = await get('/domains/only-beta');
    expect(maybeOnBeta.status).toBe(503);
    expect(maybeOnBeta.body).toMatchObject({ code: 'host_unavailable', host: 'beta' });
    const qualified = await get('/domains/beta:web1/agent/ping');
    expect(qualified.status).toBe(503);
    expect(qualified.body).toMatchObject({ code: 'host_unavailable', host: 'beta' });

    const addresses = await get('/addresses');
    expect(addresses.status).toBe(200);
    expect(addresses.body.unavailableHosts).toEqual([
      { host: 'beta', error: expect.objectContaining({ code: 'libvirt_unavailable', status: 503 }) },
    ]);
    expect(addresses.body.domains.map((d: { host: string }) => d.host)).toEqual(['alpha', 'alpha', 'alpha']);
  });

  it('GET /addresses names each domain with its host; a filter may qualify a name', async () => {
    await setup();
    const all = await get('/addresses');
    expect(all.status).toBe(200);
    expect(all.body.domains.map((d: { host: string; name: string; ok: boolean }) => `${d.host}:${d.name}:${d.ok}`)).toEqual([
      'alpha:only-alpha:true',
      'beta:only-beta:true',
      'alpha:twin:true',
      'beta:twin:true',
      'alpha:web1:true',
      'beta:web1:true',
    ]);
    const filtered = await get('/addresses?domain=beta:web1,only-alpha,nowhere');
    expect(filtered.body.domains.map((d: { host: string | null; name: string }) => `${d.host}:${d.name}`)).toEqual([
      'null:nowhere',
      'alpha:only-alpha',
      'beta:web1',
    ]);
  });

  it('an identity limited to host:pattern sees and touches only that host, and an ambiguous name lists only what it may touch', async () => {
    const token = 'qgw_beta-only-token';
    await setup({
      auth: {
        mode: 'tokens',
        identities: [
          { name: 'beta-ops', tokenSha256: createHash('sha256').update(token).digest('hex'), scopes: ['read'], domains: ['beta:*'] },
        ],
      },
    });
    const auth = { authorization: `Bearer ${token}` };
    const list = await get('/domains', auth);
    expect(list.body.domains.map((d: { host: string }) => d.host)).toEqual(['beta', 'beta', 'beta']);
    expect((await get('/domains/only-alpha', auth)).status).toBe(403);
    expect((await get('/domains/alpha:web1/agent/ping', auth)).status).toBe(403);
    const ambiguous = await get('/domains/web1/agent/ping', auth);
    expect(ambiguous.status).toBe(409);
    expect(ambiguous.body.candidates).toEqual(['beta:web1']);
    expect((await get('/domains/beta:web1/agent/ping', auth)).status).toBe(200);
  });
});

describe('hosts and identities in the configuration', () => {
  it('refuses duplicate host names and names that cannot qualify a domain', () => {
    expect(() =>
      parseConfig({
        libvirt: {
          hosts: [
            { name: 'a', uri: 'qemu:///system' },
            { name: 'a', uri: 'qemu+tcp://h/system' },
          ],
        },
      }),
    ).toThrow(/libvirt\.hosts\.1\.name: duplicate host name 'a'/);
    expect(() => parseConfig({ libvirt: { hosts: [{ name: 'hv:1', uri: 'qemu:///system' }] } })).toThrow(/libvirt\.hosts\.0\.name/);
  });

  it('takes identities from auth.identitiesFile beside the inline ones, and checks them together', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qgw-ids-'));
    const hash = (s: string) => createHash('sha256').update(s).digest('hex');
    const file = join(dir, 'identities.yaml');
    writeFileSync(file, `- name: from-secret\n  tokenSha256: ${hash('b')}\n  scopes: [read]\n`);
    const configFile = join(dir, 'config.yaml');
    writeFileSync(
      configFile,
      `auth:\n  identitiesFile: ${file}\n  identities:\n    - name: inline\n      tokenSha256: ${hash('a')}\n      scopes: [admin]\n`,
    );
    const config = loadConfig({ argv: ['--config', configFile], env: {} });
    expect(config.auth.identities.map((i) => i.name)).toEqual(['inline', 'from-secret']);

    writeFileSync(file, `- name: inline\n  tokenSha256: ${hash('c')}\n  scopes: [read]\n`);
    expect(() => loadConfig({ argv: ['--config', configFile], env: {} })).toThrow(/duplicate identity name/);
    writeFileSync(file, `name: not-a-list\n`);
    expect(() => loadConfig({ argv: ['--config', configFile], env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ argv: ['--config', configFile], env: {} })).toThrow(/must hold a list/);
  });
});
