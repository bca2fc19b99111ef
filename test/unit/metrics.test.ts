// GET /metrics against the fake libvirtd: what the counters, histograms and gauges say after real requests, that
// no URL or domain name becomes a label unless asked, that two gateways live in one process, who may scrape, and
// the libvirt connection gauges across a libvirtd that goes away and comes back.
import { describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { AgentLifecycleState } from '../../src/libvirt/protocol.js';
import { commandLabel, outcomeOf } from '../../src/metrics/labels.js';
import { GatewayError } from '../../src/errors.js';
import { FakeGuestFiles } from '../support/fake-guest-files.js';
import { defaultAgentHandler, waitFor, type AgentHandler, type FakeLibvirtd, type FakeLibvirtdOptions } from '../support/fake-libvirtd.js';
import { operationsAgent } from '../support/operations-agent.js';
import { buildOncePerTest } from '../support/harness.js';
import type { GatewayOverrides, TestGateway } from '../support/test-gateway.js';

let fake: FakeLibvirtd | null = null;

const P = 'qga_gateway_';

/** A gateway; later calls within one test start more against the same fake libvirtd (fakeOpts: the first call's). */
async function setup(overrides: GatewayOverrides = {}, fakeOpts: FakeLibvirtdOptions = {}) {
  const h = await buildOncePerTest({ libvirtd: fakeOpts, domains: ['web1', 'web2'], gateway: false });
  fake = h.fake;
  // Scraped without a token unless a test is about tokens (development mode's identity is another matter, tested below).
  return h.startGateway({ ...overrides, metrics: { public: true, ...overrides.metrics } });
}

async function scrape(gw: TestGateway, token?: string) {
  const res = await gw.app.inject({ method: 'GET', url: '/metrics', headers: token ? { authorization: `Bearer ${token}` } : {} });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  return res.body;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of the text exposition (comments left out). */
function parse(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) throw new Error(`not an exposition line: ${line}`);
      const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
      return { name: m[1]!, labels, value: Number(m[3]) };
    });
}

/** The value of the one sample with exactly these labels; undefined when there is none. */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  const hits = parse(text).filter((s) => s.name === P + name && JSON.stringify(Object.entries(s.labels).sort()) === want);
  expect(hits.length, `${name} ${want}`).toBeLessThanOrEqual(1);
  return hits[0]?.value;
}

/** Answers one command only once released; everything else as the fake's default agent does. */
function gated(execute: string) {
  const releases: (() => void)[] = [];
  const handler: AgentHandler = (dom, cmd, timeout) =>
    cmd.execute === execute
      ? new Promise((resolve) => releases.push(() => resolve(defaultAgentHandler(dom, cmd, timeout) as never)))
      : defaultAgentHandler(dom, cmd, timeout);
  const releaseAll = () => {
    for (const release of releases.splice(0)) release();
  };
  return { handler, releaseAll, pending: () => releases.length };
}

const get = (gw: TestGateway, url: string) => gw.app.inject({ method: 'GET', url });

describe('HTTP and agent metrics', () => {
  it('count requests by route pattern and status, and agent calls by command and outcome, with no URL or domain in a label', async () => {
    // A queue of one (nothing may wait), and libvirt's own agent timeout far off: the gateway's deadline decides.
    const gw = await setup({ agent: { queueDepth: 0 } }, { agentSecondMs: 60_000 });
    const gate = gated('guest-network-get-interfaces');
    fake!.agentHandler = gate.handler;
    const web1 = fake!.domain('web1');

    expect((await get(gw, '/domains/web1/agent/ping')).statusCode).toBe(200);
    expect((await get(gw, '/domains/web1/agent/ping')).statusCode).toBe(200);
    expect((await get(gw, '/domains/no-such-vm/agent/ping')).statusCode).toBe(404);
    expect((await get(gw, '/no/such/path?x=secret-query')).statusCode).toBe(404);
    // The agent never answers: 504 at the deadline, and the call keeps web1's queue slot until libvirt gives it up.
    expect((await get(gw, '/domains/web1/network-interfaces?timeoutMs=300')).statusCode).toBe(504);
    expect(gw.gateway.agent.totalQueueDepth).toBe(1);
    // So the next command to web1 finds its queue full.
    const refused = await get(gw, `/domains/${web1.uuid}/agent/ping`);
    expect(refused.json().code).toBe('agent_queue_full');

    const text = await scrape(gw);
    const http = (route: string, status: number, method = 'GET') =>
      value(text, 'http_requests_total', { method, route, status: String(status) });
    expect(http('/domains/:domain/agent/ping', 200)).toBe(2);
    expect(http('/domains/:domain/agent/ping', 404)).toBe(1);
    expect(http('/domains/:domain/agent/ping', 503)).toBe(1);
    expect(http('/domains/:domain/network-interfaces', 504)).toBe(1);
    expect(http('unmatched', 404)).toBe(1);
    expect(value(text, 'http_request_duration_seconds_count', { method: 'GET', route: '/domains/:domain/agent/ping' })).toBe(4);
    // The 504 took the 300 ms deadline (less a few ms: Node's timers may fire up to a millisecond early against
    // performance.now(), measured 299.8 ms once).
    const DEADLINE_S = 0.295;
    expect(
      value(text, 'http_request_duration_seconds_sum', { method: 'GET', route: '/domains/:domain/network-interfaces' }),
    ).toBeGreaterThanOrEqual(DEADLINE_S);

    const agent = (command: string, outcome: string) => value(text, 'agent_command_duration_seconds_count', { command, outcome });
    expect(agent('guest-ping', 'ok')).toBe(2);
    expect(agent('guest-ping', 'queue_full')).toBe(1);
    expect(agent('guest-network-get-interfaces', 'timeout')).toBe(1);
    expect(agent('guest-info', 'ok')).toBe(1);
    expect(
      value(text, 'agent_command_duration_seconds_sum', { command: 'guest-network-get-interfaces', outcome: 'timeout' }),
    ).toBeGreaterThanOrEqual(DEADLINE_S);
    // Cumulative buckets: the 300 ms call is above 0.25 s and within 0.5 s... or later, never below.
    expect(
      value(text, 'agent_command_duration_seconds_bucket', { command: 'guest-network-get-interfaces', outcome: 'timeout', le: '0.25' }),
    ).toBe(0);
    expect(
      value(text, 'agent_command_duration_seconds_bucket', { command: 'guest-network-get-interfaces', outcome: 'timeout', le: '+Inf' }),
    ).toBe(1);
    expect(value(text, 'agent_queue_rejections_total')).toBe(1);
    expect(value(text, 'agent_queue_depth')).toBe(1);

    // Bounded labels: no domain name or UUID, no raw URL or query, no per-domain label.
    for (const s of ['web1', web1.uuid, 'no-such-vm', '/no/such/path', 'secret-query']) expect(text).not.toContain(s);
    for (const s of parse(text)) expect(Object.keys(s.labels), s.name).not.toContain('domain');
    expect(parse(text).filter((s) => s.name.startsWith(`${P}agent_`) && 'host' in s.labels)).toEqual([]);

    gate.releaseAll();
    await waitFor(() => gw.gateway.agent.totalQueueDepth === 0, 2000, 'the abandoned call to end');
    expect(value(await scrape(gw), 'agent_queue_depth')).toBe(0);
  });

  it('labels agent calls and queue depth with the host and domain when metrics.perDomainLabels is true', async () => {
    const gw = await setup({ metrics: { perDomainLabels: true } });
    const gate = gated('guest-network-get-interfaces');
    fake!.agentHandler = gate.handler;
    expect((await get(gw, '/domains/web2/agent/ping')).statusCode).toBe(200);
    const pending = get(gw, '/domains/web1/network-interfaces');
    await waitFor(() => gate.pending() === 1, 2000, 'the command to reach the agent');

    let text = await scrape(gw);
    expect(
      value(text, 'agent_command_duration_seconds_count', { command: 'guest-ping', outcome: 'ok', host: 'local', domain: 'web2' }),
    ).toBe(1);
    expect(value(text, 'agent_queue_depth', { host: 'local', domain: 'web1' })).toBe(1);
    expect(value(text, 'agent_queue_depth', { host: 'local', domain: 'web2' })).toBe(0);
    // Still no URL: the route label is the pattern.
    expect(text).not.toContain('/domains/web1');

    gate.releaseAll();
    expect((await pending).statusCode).toBe(200);
    text = await scrape(gw);
    expect(
      value(text, 'agent_command_duration_seconds_count', {
        command: 'guest-network-get-interfaces',
        outcome: 'ok',
        host: 'local',
        domain: 'web1',
      }),
    ).toBe(1);
    expect(value(text, 'agent_queue_depth', { host: 'local', domain: 'web1' })).toBe(0);
    // Idle domains leave the gauge once they were reported idle.
    expect(value(await scrape(gw), 'agent_queue_depth', { host: 'local', domain: 'web1' })).toBeUndefined();
  });

  it('bounds the command and outcome labels', () => {
    expect(commandLabel('guest-get-users')).toBe('guest-get-users');
    expect(commandLabel('guest-made-up-by-a-client-1234')).toBe('other');
    expect(outcomeOf(null)).toBe('ok');
    expect(outcomeOf(new GatewayError('agent_error', 'x', { agentClass: 'CommandNotFound' }))).toBe('not_supported');
    expect(outcomeOf(new GatewayError('agent_error', 'x', { agentClass: 'GenericError' }))).toBe('agent_error');
    expect(outcomeOf(new GatewayError('agent_not_connected', 'x'))).toBe('unavailable');
    expect(outcomeOf(new GatewayError('client_gone', 'x'))).toBe('client_gone');
    expect(outcomeOf(new GatewayError('agent_reply_invalid', 'x'))).toBe('error');
  });

  it('counts a raw command outside qemu-ga’s schema as "other", and its CommandNotFound as not_supported', async () => {
    const gw = await setup({ rawCommands: { enabled: true } });
    // The fake's agent lists the command (so the gateway sends it) and then does not know it, as a disabled one would answer.
    fake!.agentHandler = (dom, cmd, t) => {
      if (cmd.execute !== 'guest-info') return defaultAgentHandler(dom, cmd, t);
      const info = defaultAgentHandler(dom, cmd, t) as { return: { version: string; supported_commands: object[] } };
      return {
        return: {
          ...info.return,
          supported_commands: [...info.return.supported_commands, { name: 'guest-x-secret-name', enabled: true, 'success-response': true }],
        },
      };
    };
    const res = await gw.app.inject({ method: 'POST', url: '/domains/web1/agent/commands', payload: { execute: 'guest-x-secret-name' } });
    expect(res.statusCode, res.body).toBe(502);
    const text = await scrape(gw);
    expect(value(text, 'agent_command_duration_seconds_count', { command: 'other', outcome: 'not_supported' })).toBe(1);
    expect(text).not.toContain('guest-x-secret-name');
  });
});

describe('file transfers, freezes and agents', () => {
  it('counts the bytes read from and written to guest files', async () => {
    const gw = await setup();
    const guest = new FakeGuestFiles();
    fake!.agentHandler = guest.handler;
    guest.files.set('/srv/data.bin', Buffer.alloc(300_000, 7));
    const down = await get(gw, '/domains/web1/files/srv/data.bin');
    expect(down.rawPayload.length).toBe(300_000);
    const up = await gw.app.inject({
      method: 'PUT',
      url: '/domains/web1/files/tmp/up.bin',
      payload: Buffer.alloc(12_345, 1),
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(up.statusCode).toBe(200);
    const text = await scrape(gw);
    expect(value(text, 'file_read_bytes_total')).toBe(300_000);
    expect(value(text, 'file_written_bytes_total')).toBe(12_345);
  });

  it('reports the freezes in force', async () => {
    const gw = await setup();
    fake!.agentHandler = operationsAgent().handler;
    expect(value(await scrape(gw), 'freezes_in_force')).toBe(0);
    expect((await gw.app.inject({ method: 'POST', url: '/domains/web1/fsfreeze', payload: { thawAfterMs: 60_000 } })).statusCode).toBe(200);
    expect(value(await scrape(gw), 'freezes_in_force')).toBe(1);
    expect((await gw.app.inject({ method: 'DELETE', url: '/domains/web1/fsfreeze' })).statusCode).toBe(200);
    expect(value(await scrape(gw), 'freezes_in_force')).toBe(0);
  });

  it('reports the agents connected, from libvirt’s agent events', async () => {
    const gw = await setup();
    expect(value(await scrape(gw), 'agents_connected')).toBe(0);
    await waitFor(() => fake!.eventCallbackCount() === 4, 2000, 'the gateway to subscribe to events');
    // The gateway forgets agent states when its subscription completes (events may have been missed before): an
    // event sent in between is forgotten too, so send them until they stick (they are idempotent).
    await waitFor(
      async () => {
        fake!.emitAgentLifecycle('web1', AgentLifecycleState.CONNECTED);
        fake!.emitAgentLifecycle('web2', AgentLifecycleState.CONNECTED);
        await new Promise((r) => setTimeout(r, 20));
        return value(await scrape(gw), 'agents_connected') === 2;
      },
      5000,
      'two agents connected',
    );
    fake!.emitAgentLifecycle('web2', AgentLifecycleState.DISCONNECTED);
    await waitFor(async () => value(await scrape(gw), 'agents_connected') === 1, 2000, 'one agent left');
  });
});

describe('libvirt connections', () => {
  it('drop when libvirtd goes away, and count reconnects when it is back', async () => {
    const gw = await setup();
    const pool = gw.gateway.hosts.list[0]!.pool;
    await waitFor(() => pool.up === 2, 2000, 'both connections to open');
    let text = await scrape(gw);
    expect(value(text, 'libvirt_connections_up', { host: 'local' })).toBe(2);
    expect(value(text, 'libvirt_reconnects_total', { host: 'local' })).toBe(0);

    fake!.acceptConnections = false;
    fake!.dropClients();
    await waitFor(() => pool.up === 0, 2000, 'every connection to drop');
    text = await scrape(gw);
    expect(value(text, 'libvirt_connections_up', { host: 'local' })).toBe(0);
    expect(value(text, 'libvirt_reconnects_total', { host: 'local' })).toBe(0);

    fake!.acceptConnections = true;
    await waitFor(async () => value(await scrape(gw), 'libvirt_connections_up', { host: 'local' }) === 2, 5000, 'both connections back');
    expect(value(await scrape(gw), 'libvirt_reconnects_total', { host: 'local' })).toBe(2);
  });
});

describe('one registry per gateway', () => {
  it('lets two gateways in one process serve their own metrics', async () => {
    const a = await setup();
    const b = await setup();
    expect((await get(a, '/domains/web1/agent/ping')).statusCode).toBe(200);
    const [textA, textB] = [await scrape(a), await scrape(b)];
    expect(value(textA, 'agent_command_duration_seconds_count', { command: 'guest-ping', outcome: 'ok' })).toBe(1);
    expect(value(textB, 'agent_command_duration_seconds_count', { command: 'guest-ping', outcome: 'ok' })).toBeUndefined();
    // The process's own metrics, in both.
    for (const text of [textA, textB]) expect(value(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(textA.match(/^# TYPE qga_gateway_process_cpu_user_seconds_total /gm)).toHaveLength(1);
  });
});

describe('who may scrape', () => {
  const scraper = newToken();
  const admin = newToken();
  const identities = [
    { name: 'prometheus', tokenSha256: tokenSha256(scraper), scopes: ['metrics' as const] },
    { name: 'admin', tokenSha256: tokenSha256(admin), scopes: ['admin' as const, 'read' as const] },
  ];
  const tokenAuth = { mode: 'tokens' as const, identities };

  it('needs a token with the metrics scope: 401 without one, 403 with another scope', async () => {
    const gw = await setup({ auth: tokenAuth, metrics: { public: false } });
    const none = await gw.app.inject({ method: 'GET', url: '/metrics' });
    expect(none.statusCode).toBe(401);
    expect(none.json().code).toBe('unauthenticated');
    const other = await gw.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${admin}` } });
    expect(other.statusCode).toBe(403);
    expect(other.json().detail).toContain("'metrics'");
    const text = await scrape(gw, scraper);
    // The refusals were counted too.
    expect(value(text, 'http_requests_total', { method: 'GET', route: '/metrics', status: '401' })).toBe(1);
    expect(value(text, 'http_requests_total', { method: 'GET', route: '/metrics', status: '403' })).toBe(1);
    expect(text).not.toContain(scraper);
    const doc = (await gw.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(doc.paths['/metrics'].get['x-permission']).toBe('metrics');
  });

  it('is open without a token when metrics.public is true', async () => {
    const gw = await setup({ auth: tokenAuth, metrics: { public: true } });
    await scrape(gw);
    // The first scrape is counted once its answer has gone out.
    expect(value(await scrape(gw), 'http_requests_total', { method: 'GET', route: '/metrics', status: '200' })).toBe(1);
    const doc = (await gw.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(doc.paths['/metrics'].get['x-permission']).toBe('public');
  });

  it('is there in development mode, like every other route', async () => {
    const gw = await setup({ metrics: { public: false } });
    expect((await gw.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
  });

  it('is not served at all when metrics.enabled is false', async () => {
    const gw = await setup({ auth: tokenAuth, metrics: { enabled: false, public: true } });
    const res = await gw.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${scraper}` } });
    expect(res.statusCode).toBe(404);
    const doc = (await gw.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(doc.paths['/metrics']).toBeUndefined();
  });
});
