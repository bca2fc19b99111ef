// promtool check metrics on the built gateway's scrape after traffic to a real guest and its qemu-ga: what CI
// requires of /metrics (no finding), with the agent's own replies and failures behind the samples. One busybox
// guest, read and written under /tmp only: nothing here freezes, powers or otherwise disturbs the shared guests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { checkMetrics, metricFamilies, promtoolPath, sample } from '../support/promtool.js';
import { guestShell } from './support/files.js';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { assertProvisioned, guest } from './support/guests.js';

const g = guest((t) => t.agent && t.running && (t.image ?? 'busybox') === 'busybox', 'a running busybox guest with an agent');
const operator = newToken();
const scraper = newToken();
const upload = `/tmp/qga-metrics-promtool-${process.pid}.txt`;
let gw: GatewayProcess;
let promtool = '';

beforeAll(async () => {
  assertProvisioned();
  promtool = promtoolPath();
  gw = await startGateway({
    auth: {
      mode: 'tokens',
      identities: [
        { name: 'operator', tokenSha256: tokenSha256(operator), scopes: ['read', 'files:read', 'files:write'] },
        { name: 'prometheus', tokenSha256: tokenSha256(scraper), scopes: ['metrics'] },
      ],
    },
  });
});
afterAll(async () => {
  await gw?.stop();
  await guestShell(g.name, `rm -f ${upload}`);
});

const call = async (method: string, path: string, token: string | null = operator, body?: string) => {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/octet-stream' },
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.status, text: await res.text() };
};

const P = 'qga_gateway_';

describe('promtool check metrics against a real guest', () => {
  it('finds nothing in the scrape after agent calls, a failure, file transfers and refusals', async () => {
    expect((await call('GET', `/domains/${g.name}/agent/ping`)).status).toBe(200);
    expect((await call('GET', `/domains/${g.name}/network-interfaces`)).status).toBe(200);
    // guest-file-open fails in the guest: an agent error.
    expect((await call('GET', `/domains/${g.name}/files/no/such/file`)).status).toBe(404);
    const hostname = await call('GET', `/domains/${g.name}/files/proc/sys/kernel/hostname`);
    expect(hostname.status).toBe(200);
    expect((await call('PUT', `/domains/${g.name}/files${upload}`, operator, 'written by metrics-promtool.test.ts\n')).status).toBe(200);
    expect((await call('GET', `/domains/${g.name}/agent/ping`, null)).status).toBe(401);

    const scrape = await call('GET', '/metrics', scraper);
    expect(scrape.status).toBe(200);
    const text = scrape.text;

    expect(checkMetrics(promtool, text)).toEqual({ status: 0, output: '' });

    // The families are there, with the samples this traffic made: promtool alone would pass an empty scrape.
    expect(metricFamilies(text)).toMatchObject({
      [`${P}http_requests_total`]: 'counter',
      [`${P}agent_command_duration_seconds`]: 'histogram',
      [`${P}file_read_bytes_total`]: 'counter',
      [`${P}libvirt_connections_up`]: 'gauge',
      [`${P}process_cpu_seconds_total`]: 'counter',
    });
    const calls = (command: string, outcome: string) =>
      sample(text, `${P}agent_command_duration_seconds_count{command="${command}",outcome="${outcome}"}`);
    expect(calls('guest-ping', 'ok')).toBe(1);
    expect(calls('guest-file-open', 'agent_error')).toBe(1);
    expect(sample(text, `${P}file_read_bytes_total`)).toBeGreaterThanOrEqual(hostname.text.length);
    expect(sample(text, `${P}file_written_bytes_total`)).toBeGreaterThan(0);
    expect(sample(text, `${P}http_requests_total{method="GET",route="/domains/:domain/agent/ping",status="401"}`)).toBe(1);
  });
});
