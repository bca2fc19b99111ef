// GET /events against the real libvirtd and guests: guest-power (the one guest the power tests may reboot) is
// rebooted through POST /power, and the streams show what libvirt and the agent did, in order; a stream cut off
// during the reboot resumes with Last-Event-ID without losing an event; a filtered stream and an identity limited to
// another domain see nothing of guest-power.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { openSse, type SseClient, type SseEvent } from '../support/sse-client.js';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { assertProvisioned, guest, waitFor } from './support/guests.js';
import { ensurePowerGuestRunning, powerGuest } from './support/power.js';

const other = guest((g) => g.name === 'guest1', 'guest1');
const tokens = { all: newToken(), guest1Only: newToken() };
const auth = (t: string) => ({ authorization: `Bearer ${t}` });
let gw: GatewayProcess;
const streams: SseClient[] = [];

async function open(path: string, token: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const s = await openSse(`${gw.url}${path}`, { ...auth(token), ...headers });
  expect(s.status, path).toBe(200);
  streams.push(s);
  return s;
}

/** What happened to a domain, in the stream's words: "domain reboot", "agent disconnected", "addresses"... */
const story = (events: SseEvent[], name: string) =>
  events
    .filter((e) => e.data.domain?.name === name)
    .map((e) => (e.type === 'domain' ? `domain ${e.data.event}` : e.type === 'agent' ? `agent ${e.data.state}` : e.type));

beforeAll(async () => {
  assertProvisioned();
  await ensurePowerGuestRunning();
  gw = await startGateway({
    auth: {
      mode: 'tokens',
      identities: [
        { name: 'all', tokenSha256: tokenSha256(tokens.all), scopes: ['read', 'power'] },
        { name: 'guest1-only', tokenSha256: tokenSha256(tokens.guest1Only), scopes: ['read'], domains: [other.name] },
      ],
    },
    // Addresses read on each agent connect (and every minute): the reboot's reconnect brings an addresses event.
    events: { addressesPollMs: 60_000, heartbeatMs: 5_000 },
  });
});
afterAll(async () => {
  for (const s of streams) s.close();
  await ensurePowerGuestRunning();
  await gw?.stop();
});

describe('GET /events with real guests', () => {
  it('shows a reboot through POST /power as reboot, agent disconnected, agent connected, addresses; resumes without loss', async () => {
    const all = await open('/events', tokens.all);
    const filtered = await open(`/events?domain=${powerGuest.name}`, tokens.all);
    const cut = await open(`/events?domain=uuid:${powerGuest.uuid}`, tokens.all);
    const limited = await open('/events', tokens.guest1Only);
    // The stream's position line has come: the gateway registered the streams before the reboot is asked for.
    await waitFor('the streams to open', async () => [all, filtered, cut, limited].every((s) => s.lastId !== undefined), 5000, 50);

    const started = Date.now();
    const res = await fetch(`${gw.url}/domains/${powerGuest.name}/power`, {
      method: 'POST',
      headers: { ...auth(tokens.all), 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'reboot' }),
    });
    expect(res.status).toBe(202);
    // Cut one stream as soon as the guest went down: what follows it must come back on resume.
    await cut.next((e) => e.type === 'agent' && e.data.state === 'disconnected', 90_000);
    const resumeFrom = cut.lastId!;
    cut.close();

    await all.next((e) => e.type === 'agent' && e.data.state === 'connected' && e.data.domain.name === powerGuest.name, 120_000);
    await all.next((e) => e.type === 'addresses' && e.data.domain.name === powerGuest.name, 30_000);
    const bootMs = Date.now() - started;

    const seen = story(all.events, powerGuest.name);
    // The agent stops while the guest shuts down (the channel closes), then the guest resets (libvirt's REBOOT), then
    // the new boot's agent connects and its addresses are read. No stop or start: a reboot keeps the QEMU process.
    // QEMU reports each reset of the reboot (two or three here, within milliseconds, as `virsh event` shows them
    // too): the gateway passes on every one, as libvirt sent it.
    const collapsed = seen.filter((what, i) => what !== seen[i - 1]);
    expect(collapsed).toEqual(['agent disconnected', 'domain reboot', 'agent connected', 'addresses']);
    expect(seen.filter((what) => what === 'domain reboot').length).toBeLessThanOrEqual(4);
    const reboot = all.events.find((e) => e.type === 'domain' && e.data.domain.name === powerGuest.name)!;
    expect(reboot.data).toMatchObject({
      event: 'reboot',
      detail: 'reset',
      state: 'running',
      domain: { host: 'local', name: powerGuest.name, uuid: powerGuest.uuid },
    });
    const addresses = all.events.find((e) => e.type === 'addresses' && e.data.domain.name === powerGuest.name)!;
    const ips = addresses.data.interfaces.flatMap((i: { addresses: { address: string }[] }) => i.addresses.map((a) => a.address));
    expect(ips).toContain(powerGuest.ip.split('/')[0]);
    // Ids increase, and the filtered stream got the same events as the full one, by id.
    const ids = all.events.map((e) => Number(e.id!.split('-')[1]));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const ofPower = all.events.filter((e) => e.data.domain?.name === powerGuest.name);
    await filtered.next((e) => e.id === ofPower.at(-1)!.id, 5000);
    expect(filtered.events.map((e) => e.raw)).toEqual(ofPower.map((e) => e.raw));

    // Resumed from the last id it saw, the cut stream gets exactly what it missed, then lives on.
    const resumed = await open(`/events?domain=uuid:${powerGuest.uuid}`, tokens.all, { 'last-event-id': resumeFrom });
    await resumed.next((e) => e.id === ofPower.at(-1)!.id, 5000);
    expect([...cut.events, ...resumed.events].map((e) => e.raw)).toEqual(ofPower.map((e) => e.raw));

    // guest1-only saw nothing of guest-power, only (maybe) guest1's own events and the hosts'.
    expect(limited.events.filter((e) => e.data.domain && e.data.domain.name !== other.name)).toEqual([]);
    expect(limited.events.filter((e) => e.type === 'domain' || e.type === 'agent')).toEqual([]);
    console.log(`reboot of ${powerGuest.name}: agent back and addresses read ${bootMs} ms after POST /power`);
  }, 240_000);
});
