// File-system freeze, thaw and fstrim against the fake libvirtd: the deadline thaw without any client, the
// 409 guard while frozen, thaw on graceful close, and what an unfreezable guest answers.
import { describe, expect, it } from 'vitest';
import { LifecycleEvent } from '../../src/libvirt/protocol.js';
import { waitFor, type FakeLibvirtd } from '../support/fake-libvirtd.js';
import { operationsAgent, type OperationsAgent } from '../support/operations-agent.js';
import { build, request, type Method } from '../support/harness.js';
import type { GatewayOverrides, TestGateway } from '../support/test-gateway.js';

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;
let agent: OperationsAgent;

async function setup(config: GatewayOverrides = {}) {
  agent = operationsAgent();
  ({ fake, gw } = await build({ domains: ['vm1'], agent: agent.handler, config }));
}

const call = (method: Method, url: string, payload?: unknown) => request(gw!, method, url, payload);

const sent = () => fake!.agentLog.filter((e) => e.execute !== 'guest-info').map((e) => e.execute);
const held = () => gw!.gateway.freeze.registry.all().length;

describe('GET/POST/DELETE /domains/{domain}/fsfreeze', () => {
  it('reports the status and that the gateway holds no freeze', async () => {
    await setup();
    const r = await call('GET', '/domains/vm1/fsfreeze');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      domain: { host: 'local', name: 'vm1', uuid: fake!.domain('vm1').uuid },
      status: 'thawed',
      heldByGateway: null,
    });
    expect(sent()).toEqual(['guest-fsfreeze-status']);
  });

  it('freezes everything with the default deadline, refuses other commands (409) while frozen, thaws on DELETE', async () => {
    await setup();
    const frozen = await call('POST', '/domains/vm1/fsfreeze');
    expect(frozen.status).toBe(200);
    expect(frozen.body).toMatchObject({ frozenFileSystems: 2, status: 'frozen', heldByGateway: { mountpoints: null, blocking: true } });
    const { frozenAt, autoThawAt } = frozen.body.heldByGateway;
    expect(Date.parse(autoThawAt) - Date.parse(frozenAt)).toBe(30_000);

    const nic = await call('GET', '/domains/vm1/network-interfaces');
    expect(nic.status).toBe(409);
    expect(nic.body).toMatchObject({ code: 'state_conflict', command: 'guest-network-get-interfaces' });
    expect((await call('POST', '/domains/vm1/power', { action: 'shutdown' })).body.code).toBe('state_conflict');
    expect((await call('POST', '/domains/vm1/fsfreeze')).status).toBe(409);
    expect((await call('GET', '/domains/vm1/agent/ping')).status).toBe(200);
    const status = await call('GET', '/domains/vm1/fsfreeze');
    expect(status.body).toMatchObject({ status: 'frozen', heldByGateway: { autoThawAt } });

    const thawed = await call('DELETE', '/domains/vm1/fsfreeze');
    expect(thawed.status).toBe(200);
    expect(thawed.body).toMatchObject({ thawedFileSystems: 2, status: 'thawed' });
    expect((await call('GET', '/domains/vm1/network-interfaces')).status).toBe(200);
    // Nothing refused by the guard ever reached the agent.
    expect(sent()).toEqual([
      'guest-fsfreeze-freeze',
      'guest-fsfreeze-status',
      'guest-ping',
      'guest-fsfreeze-status',
      'guest-fsfreeze-thaw',
      'guest-network-get-interfaces',
    ]);
  });

  it('thaws by itself when the deadline passes, with no client call', async () => {
    await setup();
    const r = await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 300 });
    expect(r.body.status).toBe('frozen');
    await waitFor(() => agent.frozen.get('vm1') === false && held() === 0, 5000, 'the deadline thaw');
    expect(sent().at(-1)).toBe('guest-fsfreeze-thaw');
    expect(gw!.logs.some((l) => l.msg === 'freeze deadline passed: thawed' && l.domain === 'vm1')).toBe(true);
  });

  it('retries the deadline thaw when the agent is briefly unavailable', async () => {
    await setup();
    await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 100 });
    agent.overrides.set('guest-fsfreeze-thaw', {
      libvirtError: { code: 86, message: 'Guest agent is not responding: Guest agent not available for now' },
    });
    await waitFor(() => gw!.logs.some((l) => l.msg === 'freeze deadline passed: thaw failed; retrying'), 5000, 'a failed thaw');
    agent.overrides.delete('guest-fsfreeze-thaw');
    await waitFor(() => held() === 0, 10_000, 'the retried thaw');
    expect(agent.frozen.get('vm1')).toBe(false);
  });

  it('freezes a list of mount points with guest-fsfreeze-freeze-list', async () => {
    await setup();
    const r = await call('POST', '/domains/vm1/fsfreeze', { mountpoints: ['/var'], thawAfterMs: 60_000 });
    expect(r.body).toMatchObject({ frozenFileSystems: 1, status: 'frozen', heldByGateway: { mountpoints: ['/var'] } });
    expect(fake!.agentLog.find((e) => e.execute === 'guest-fsfreeze-freeze-list')?.arguments).toEqual({ mountpoints: ['/var'] });
  });

  it('a guest with nothing freezable answers 0 and stays thawed: commands pass, the deadline thaw still runs', async () => {
    await setup();
    agent.mounts = [];
    const r = await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 300 });
    expect(r.body).toMatchObject({ frozenFileSystems: 0, status: 'thawed', heldByGateway: { blocking: false } });
    expect((await call('GET', '/domains/vm1/network-interfaces')).status).toBe(200);
    await waitFor(() => held() === 0, 5000, 'the deadline thaw');
    expect(sent().at(-1)).toBe('guest-fsfreeze-thaw');
  });

  it('thaws every domain it froze when the gateway closes', async () => {
    await setup();
    await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 300_000 });
    expect(agent.frozen.get('vm1')).toBe(true);
    await gw!.close();
    gw = null;
    expect(agent.frozen.get('vm1')).toBe(false);
    expect(sent().at(-1)).toBe('guest-fsfreeze-thaw');
  });

  it('forgets a freeze that failed, and one whose domain stopped', async () => {
    await setup();
    agent.overrides.set('guest-fsfreeze-freeze', { error: { class: 'GenericError', desc: 'failed to freeze /: Device or resource busy' } });
    const failed = await call('POST', '/domains/vm1/fsfreeze');
    expect(failed.status).toBe(502);
    expect(failed.body.agentDesc).toBe('failed to freeze /: Device or resource busy');
    expect(held()).toBe(0);
    agent.overrides.clear();
    await call('POST', '/domains/vm1/fsfreeze');
    expect(held()).toBe(1);
    fake!.emitLifecycle('vm1', LifecycleEvent.STOPPED);
    await waitFor(() => held() === 0, 5000, 'the freeze forgotten');
  });

  it('keeps a freeze whose answer never came, so that the deadline still thaws it', async () => {
    await setup();
    agent.overrides.set('guest-fsfreeze-freeze', { hang: true });
    const r = await call('POST', '/domains/vm1/fsfreeze?timeoutMs=200', { thawAfterMs: 1500 });
    expect(r.status).toBe(504);
    expect(held()).toBe(1);
    agent.overrides.clear();
    await waitFor(() => held() === 0, 10_000, 'the deadline thaw');
    expect(sent().at(-1)).toBe('guest-fsfreeze-thaw');
  });

  it.each([
    [{ thawAfterMs: 300_001 }],
    [{ thawAfterMs: 0 }],
    [{ mountpoints: [] }],
    [{ mountpoints: ['var'] }],
    [{ mountpoints: ['/a\u0000b'] }],
  ])('answers 400 for %j and sends nothing', async (body) => {
    await setup();
    const r = await call('POST', '/domains/vm1/fsfreeze', body);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('invalid_request');
    expect(fake!.agentLog).toEqual([]);
  });

  it('honours a configured maximum', async () => {
    await setup({ freeze: { maxTimeoutMs: 1000, defaultTimeoutMs: 500 } });
    expect((await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 1001 })).status).toBe(400);
  });

  it('maps the agent refusing because someone else froze the guest', async () => {
    await setup();
    agent.frozen.set('vm1', true);
    const r = await call('GET', '/domains/vm1/network-interfaces');
    expect(r.status).toBe(502);
    expect(r.body).toMatchObject({ code: 'agent_error', agentClass: 'CommandNotFound' });
    expect((await call('DELETE', '/domains/vm1/fsfreeze')).body.thawedFileSystems).toBe(2);
  });
});

describe('POST /domains/{domain}/fstrim', () => {
  it('answers one result per file system, and passes minimumBytes', async () => {
    await setup();
    const r = await call('POST', '/domains/vm1/fstrim', { minimumBytes: 65536 });
    expect(r.status).toBe(200);
    expect(r.body.paths).toEqual([
      { path: '/', trimmedBytes: 4096, minimumBytes: 65536, error: null },
      { path: '/boot', trimmedBytes: null, minimumBytes: null, error: 'trim not supported' },
    ]);
    expect(fake!.agentLog.find((e) => e.execute === 'guest-fstrim')?.arguments).toEqual({ minimum: 65536 });
  });

  it('sends no arguments without a body, and refuses a negative minimum', async () => {
    await setup();
    expect((await call('POST', '/domains/vm1/fstrim')).status).toBe(200);
    expect(fake!.agentLog.find((e) => e.execute === 'guest-fstrim')?.arguments).toBeUndefined();
    expect((await call('POST', '/domains/vm1/fstrim', { minimumBytes: -1 })).status).toBe(400);
  });
});
