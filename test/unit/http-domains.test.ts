// The HTTP layer end to end in process: Fastify app, services and wire client against the fake libvirtd.
import { describe, expect, it } from 'vitest';
import { AgentLifecycleState, LifecycleEvent } from '../../src/libvirt/protocol.js';
import { DomainState, waitFor, type FakeLibvirtd } from '../support/fake-libvirtd.js';
import { build, request } from '../support/harness.js';
import type { GatewayOverrides, TestGateway } from '../support/test-gateway.js';

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;

async function setup(config: GatewayOverrides = {}) {
  const domains = [
    { name: 'web1', uuid: '11111111-2222-4333-8444-555555555555' },
    { name: 'noagent', agent: 'none' as const },
    { name: 'off', state: DomainState.SHUTOFF },
  ];
  ({ fake, gw } = await build({ domains, config }));
  return gw;
}

const get = (url: string) => request(gw!, 'GET', url);

describe('GET /domains', () => {
  it('lists every domain with state and agent state', async () => {
    await setup();
    const { status, body } = await get('/domains');
    expect(status).toBe(200);
    expect(body.domains.map((d: { name: string }) => d.name)).toEqual(['noagent', 'off', 'web1']);
    const byName = Object.fromEntries(body.domains.map((d: { name: string }) => [d.name, d]));
    expect(byName.web1).toMatchObject({
      uuid: '11111111-2222-4333-8444-555555555555',
      state: 'running',
      agentState: 'connected',
      agentChannel: true,
    });
    expect(byName.noagent).toMatchObject({ agentState: 'disconnected', agentChannel: false });
    expect(byName.off).toMatchObject({ state: 'shutoff', id: null, agentState: 'disconnected', agentChannel: true });
    expect(fake!.agentCommandCount).toBe(0);
  });

  it('reads each domain XML once, running or not, until an event says it changed', async () => {
    await setup();
    await get('/domains');
    const xmlReads = fake!.callCount(14);
    expect(xmlReads).toBe(3);
    await get('/domains');
    await get('/domains/off');
    expect(fake!.callCount(14)).toBe(xmlReads);
    fake!.setState('off', DomainState.RUNNING);
    fake!.emitLifecycle('off', LifecycleEvent.STARTED, 0);
    await waitFor(async () => (await get('/domains/off')).body.state === 'running', 2000, 'the start');
    expect(fake!.callCount(14)).toBe(xmlReads + 1);
  });

  it('follows agent-lifecycle and lifecycle events without asking libvirt again', async () => {
    await setup();
    expect((await get('/domains/web1')).body.agentState).toBe('connected');
    const xmlReads = fake!.callCount(14);
    fake!.emitAgentLifecycle('web1', AgentLifecycleState.DISCONNECTED, 2);
    await waitFor(async () => (await get('/domains/web1')).body.agentState === 'disconnected', 2000, 'the event');
    fake!.emitAgentLifecycle('web1', AgentLifecycleState.CONNECTED, 2);
    await waitFor(async () => (await get('/domains/web1')).body.agentState === 'connected', 2000, 'the event');
    expect(fake!.callCount(14)).toBe(xmlReads);
    fake!.setState('web1', DomainState.SHUTOFF);
    fake!.emitLifecycle('web1', LifecycleEvent.STOPPED, 0);
    await waitFor(async () => (await get('/domains/web1')).body.state === 'shutoff', 2000, 'the stop');
    expect((await get('/domains/web1')).body).toMatchObject({ agentState: 'disconnected', id: null });
  });
});

describe('GET /domains/{domain}', () => {
  it('resolves names and UUIDs in any case, with or without dashes', async () => {
    await setup();
    for (const id of [
      'web1',
      '11111111-2222-4333-8444-555555555555',
      '11111111-2222-4333-8444-555555555555'.toUpperCase(),
      '11111111222243338444555555555555',
    ]) {
      const r = await get(`/domains/${id}`);
      expect(r.status, id).toBe(200);
      expect(r.body.name).toBe('web1');
    }
  });

  it('answers 404 problem+json for an unknown domain and for an unknown route', async () => {
    await setup();
    const r = await get('/domains/nope');
    expect(r.status).toBe(404);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(r.body).toMatchObject({
      code: 'domain_not_found',
      status: 404,
      type: 'urn:qga-gateway:problem:domain_not_found',
      instance: '/domains/nope',
    });
    expect(r.body.requestId).toBe(r.headers['x-request-id']);
    const route = await get('/nothing/here');
    expect(route.status).toBe(404);
    expect(route.body.code).toBe('not_found');
  });

  it('refuses control characters and over-long names with 400 before asking libvirt', async () => {
    await setup();
    const before = fake!.calls.length;
    for (const bad of ['web%00', 'a%0Ab', 'x'.repeat(1025)]) {
      const r = await get(`/domains/${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.code).toBe('invalid_request');
    }
    expect(fake!.calls.length).toBe(before);
  });

  it('follows a rename: a stale cached lookup is dropped on the lifecycle event', async () => {
    await setup();
    expect((await get('/domains/web1')).status).toBe(200);
    const web1 = fake!.domain('web1');
    fake!.removeDomain('web1');
    fake!.emitLifecycle(web1, LifecycleEvent.UNDEFINED, 0);
    await waitFor(async () => (await get('/domains/web1')).status === 404, 2000, 'the undefine to show');
  });
});

describe('health', () => {
  it('is ready with libvirt up, and not ready (503) without it, while /healthz stays 200', async () => {
    await setup();
    await waitFor(async () => (await get('/readyz')).body.libvirt.connectionsUp === 2, 2000, 'both connections');
    expect((await get('/readyz')).body).toMatchObject({ status: 'ready', libvirt: { connectionsUp: 2, connections: 2 } });
    fake!.acceptConnections = false;
    fake!.dropClients();
    await waitFor(async () => (await get('/readyz')).status === 503, 2000, 'not ready');
    expect((await get('/readyz')).body.libvirt.lastError).toBeTruthy();
    expect((await get('/healthz')).status).toBe(200);
    const domains = await get('/domains');
    expect(domains.status).toBe(503);
    expect(domains.body.code).toBe('libvirt_unavailable');
    expect(domains.headers['retry-after']).toBeDefined();
    fake!.acceptConnections = true;
    await waitFor(async () => (await get('/readyz')).status === 200, 5000, 'ready again');
    expect((await get('/domains')).status).toBe(200);
    expect(gw!.gateway.hosts.list[0]!.pool.reconnects).toBeGreaterThan(0);
  });
});

describe('routes', () => {
  it('refuse to exist without a declared permission', async () => {
    await setup();
    const { buildApp } = await import('../../src/http/app.js');
    const pino = (await import('pino')).default;
    const app = await buildApp(gw!.gateway, pino({ level: 'silent' }), null);
    expect(() => app.get('/unguarded', async () => 'x')).toThrow(/declares no permission/);
    await app.close();
  });
});
