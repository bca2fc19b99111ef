// The scrape as Prometheus's own linter reads it: `promtool check metrics` (Debian's prometheus package, got by
// scripts/promtool.sh) must find nothing in /metrics after traffic through every metric family the gateway has,
// Node's process metrics included. It checks names, types, HELP and suffixes of what is there, so the test also
// asserts that the families are there with samples: an empty scrape would pass promtool.
import { beforeAll, describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { FakeGuestFiles } from '../support/fake-guest-files.js';
import { defaultAgentHandler, waitFor, type AgentHandler, type AgentReply } from '../support/fake-libvirtd.js';
import { build, request } from '../support/harness.js';
import { operationsAgent } from '../support/operations-agent.js';
import { checkMetrics, metricFamilies, promtoolPath, sample } from '../support/promtool.js';

let promtool = '';
beforeAll(() => {
  promtool = promtoolPath();
}, 300_000);

const P = 'qga_gateway_';

/** The gateway's own families (docs/operations.md lists them), and a few of Node's. */
const FAMILIES: Record<string, string> = {
  http_requests_total: 'counter',
  http_request_duration_seconds: 'histogram',
  agent_command_duration_seconds: 'histogram',
  agent_queue_depth: 'gauge',
  agent_queue_rejections_total: 'counter',
  agents_connected: 'gauge',
  libvirt_connections_up: 'gauge',
  libvirt_reconnects_total: 'counter',
  file_read_bytes_total: 'counter',
  file_written_bytes_total: 'counter',
  freezes_in_force: 'gauge',
  event_streams: 'gauge',
  events_total: 'counter',
  event_streams_dropped_total: 'counter',
  process_cpu_seconds_total: 'counter',
  process_resident_memory_bytes: 'gauge',
  nodejs_active_handles: 'gauge',
  nodejs_eventloop_lag_seconds: 'gauge',
};

const operator = newToken();
const scraper = newToken();
const auth = {
  mode: 'tokens' as const,
  identities: [
    {
      name: 'operator',
      tokenSha256: tokenSha256(operator),
      scopes: ['read' as const, 'files:read' as const, 'files:write' as const, 'freeze' as const],
    },
    { name: 'prometheus', tokenSha256: tokenSha256(scraper), scopes: ['metrics' as const] },
  ],
};

describe('promtool check metrics', () => {
  it('finds nothing in a scrape after traffic through every metric family', async () => {
    // web1 keeps files (and holds guest-network-get-interfaces until released), web2 freezes; guest-get-host-name
    // fails on both with an agent error.
    const files = new FakeGuestFiles();
    files.files.set('/srv/data.bin', Buffer.alloc(4096, 7));
    const ops = operationsAgent();
    let release: (() => void) | null = null;
    const agent: AgentHandler = (dom, cmd, timeout) => {
      if (cmd.execute === 'guest-get-host-name') return { error: { class: 'GenericError', desc: 'no host name here' } };
      if (cmd.execute === 'guest-network-get-interfaces')
        return new Promise<AgentReply>((resolve) => {
          release = () => resolve(defaultAgentHandler(dom, cmd, timeout) as AgentReply);
        });
      return (dom.name === 'web1' ? files.handler : ops.handler)(dom, cmd, timeout);
    };
    // A queue of one: a command to web1 while another runs there is refused (agent_queue_rejections_total).
    const { gw } = await build({ domains: ['web1', 'web2'], agent, config: { auth, agent: { queueDepth: 0 } } });
    const as = { authorization: `Bearer ${operator}` };
    const call = async (method: 'GET' | 'PUT' | 'POST', url: string, payload?: unknown, headers: Record<string, string> = as) =>
      (await request(gw, method, url, payload, headers)).status;

    expect(await call('GET', '/domains/web1/agent/ping')).toBe(200);
    const held = call('GET', '/domains/web1/network-interfaces');
    await waitFor(() => release !== null, 2000, 'the held command to reach the agent');
    expect(await call('GET', '/domains/web1/agent/ping')).toBe(503);
    release!();
    expect(await held).toBe(200);
    expect(await call('GET', '/domains/web2/hostname')).toBe(502);
    expect(await call('GET', '/domains/web1/files/srv/data.bin')).toBe(200);
    const upload = Buffer.alloc(1000, 1);
    expect(await call('PUT', '/domains/web1/files/tmp/up.bin', upload, { ...as, 'content-type': 'application/octet-stream' })).toBe(200);
    expect(await call('POST', '/domains/web2/fsfreeze', { thawAfterMs: 60_000 })).toBe(200);
    expect(await call('GET', '/domains/web1/agent/ping', undefined, {})).toBe(401);
    expect(await call('GET', '/no/such/path')).toBe(404);

    const scrape = await request(gw, 'GET', '/metrics', undefined, { authorization: `Bearer ${scraper}` });
    expect(scrape.status).toBe(200);
    const text = scrape.raw;

    expect(checkMetrics(promtool, text)).toEqual({ status: 0, output: '' });

    expect(metricFamilies(text)).toMatchObject(Object.fromEntries(Object.entries(FAMILIES).map(([name, type]) => [P + name, type])));
    const agentCalls = (command: string, outcome: string) =>
      sample(text, `${P}agent_command_duration_seconds_count{command="${command}",outcome="${outcome}"}`);
    expect(agentCalls('guest-ping', 'ok')).toBe(1);
    expect(agentCalls('guest-ping', 'queue_full')).toBe(1);
    expect(agentCalls('guest-get-host-name', 'agent_error')).toBe(1);
    expect(sample(text, `${P}agent_queue_rejections_total`)).toBe(1);
    expect(sample(text, `${P}http_requests_total{method="GET",route="unmatched",status="404"}`)).toBe(1);
    expect(sample(text, `${P}http_requests_total{method="GET",route="/domains/:domain/agent/ping",status="401"}`)).toBe(1);
    expect(sample(text, `${P}file_read_bytes_total`)).toBe(4096);
    expect(sample(text, `${P}file_written_bytes_total`)).toBe(upload.length);
    expect(sample(text, `${P}freezes_in_force`)).toBe(1);
    expect(sample(text, `${P}libvirt_connections_up{host="local"}`)).toBe(2);
  });
});
