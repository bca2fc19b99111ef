// GET /events against the fake libvirtd, over a real socket: libvirt's events in the gateway's words, the stream's
// framing (retry, position, keep-alive), resuming with Last-Event-ID, filters that never show another identity's
// domains, the bound on streams and on a slow client's queue, and the `closing` event at shutdown.
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { AgentLifecycleState, LifecycleEvent } from '../../src/libvirt/protocol.js';
import { waitFor } from '../support/fake-libvirtd.js';
import { build, type BuildOptions } from '../support/harness.js';
import { openSse, type SseClient } from '../support/sse-client.js';

async function listening(opts: BuildOptions) {
  const h = await build(opts);
  await h.gw.app.listen({ host: '127.0.0.1', port: 0 });
  // libvirt's three event subscriptions follow the first connection: an event emitted before them reaches nobody.
  await waitFor(() => h.fake.eventCallbackCount() === 3, 2000, "the gateway's event subscriptions");
  const address = h.gw.app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const streams: SseClient[] = [];
  const open = async (path = '/events', headers: Record<string, string> = {}) => {
    const s = await openSse(`${url}${path}`, headers);
    streams.push(s);
    return s;
  };
  /** Resolves once the hub counts n streams: events published before a stream is registered are not its. */
  const opened = (n: number) => waitFor(() => h.gw.gateway.events!.streamCount === n, 2000, `${n} streams`);
  return { ...h, url, open, opened, streams };
}

describe('GET /events', () => {
  it("streams libvirt's lifecycle, reboot and agent events in the gateway's words, framed as the contract says", async () => {
    const h = await listening({ domains: ['web1'], config: { events: { heartbeatMs: 50 } } });
    const web1 = h.fake.domain('web1');
    const s = await h.open();
    await h.opened(1);
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(s.headers['cache-control']).toBe('no-cache');
    expect(s.text).toMatch(new RegExp(`^retry: 2000\nid: ${h.gw.gateway.events!.bus.epoch}-\\d+\n\n`));

    h.fake.setState('web1', 3, 1);
    h.fake.emitLifecycle('web1', LifecycleEvent.SUSPENDED, 0);
    h.fake.emitLifecycle('web1', LifecycleEvent.STOPPED, 1);
    h.fake.emitReboot('web1');
    h.fake.emitAgentLifecycle('web1', AgentLifecycleState.DISCONNECTED, 2);
    h.fake.emitLifecycle('web1', 42, 0);
    h.fake.emitLifecycle('web1', LifecycleEvent.STARTED, 99);

    const domain = { host: 'local', name: 'web1', uuid: web1.uuid };
    const suspended = await s.next((e) => e.type === 'domain');
    expect(suspended.data).toEqual({
      id: suspended.id,
      type: 'domain',
      time: expect.any(String),
      domain,
      event: 'suspended',
      detail: 'paused',
      state: 'paused',
    });
    expect(suspended.raw.split('\n')).toEqual([`id: ${suspended.id}`, 'event: domain', `data: ${JSON.stringify(suspended.data)}`]);
    expect((await s.next()).data).toMatchObject({ type: 'domain', event: 'stopped', detail: 'destroyed', state: 'shutoff' });
    expect((await s.next()).data).toMatchObject({ type: 'domain', event: 'reboot', detail: 'reset', state: 'running', domain });
    expect((await s.next()).data).toMatchObject({ type: 'agent', state: 'disconnected', reason: 'channel', domain });
    // An event number this gateway does not know is not invented; an unknown detail is passed on by number.
    expect((await s.next()).data).toMatchObject({ event: 'started', detail: 'unknown-99' });
    const ids = s.events.map((e) => Number(e.id!.split('-')[1]));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    await waitFor(() => s.comments.includes('keep-alive'), 2000, 'a keep-alive comment');
  });

  it('resumes after Last-Event-ID with exactly what was missed, and sends `reset` when it cannot', async () => {
    const h = await listening({ domains: ['web1'], config: { events: { bufferSize: 3 } } });
    const first = await h.open();
    await h.opened(1);
    h.fake.emitLifecycle('web1', LifecycleEvent.SUSPENDED, 0);
    const seen = await first.next();
    first.close();
    await h.opened(0);
    h.fake.emitLifecycle('web1', LifecycleEvent.RESUMED, 0);
    h.fake.emitReboot('web1');
    const seq = (id: string) => Number(id.split('-')[1]);
    await waitFor(() => seq(h.gw.gateway.events!.bus.position) === seq(seen.id!) + 2, 2000, 'two more events');

    const resumed = await h.open('/events', { 'last-event-id': seen.id! });
    expect((await resumed.next()).data).toMatchObject({ event: 'resumed' });
    expect((await resumed.next()).data).toMatchObject({ event: 'reboot' });
    h.fake.emitLifecycle('web1', LifecycleEvent.SUSPENDED, 0);
    expect((await resumed.next()).data).toMatchObject({ event: 'suspended' });
    expect(resumed.events).toHaveLength(3);

    // The position line alone is a resumable id: a client that saw no event resumes from where it connected.
    const quiet = await h.open();
    await h.opened(2);
    const position = quiet.lastId!;
    quiet.close();
    h.fake.emitLifecycle('web1', LifecycleEvent.RESUMED, 0);
    const again = await h.open('/events', { 'last-event-id': position });
    expect((await again.next()).data).toMatchObject({ event: 'resumed' });

    for (const stale of [seen.id!, 'garbage', `${h.gw.gateway.events!.bus.epoch}-999`]) {
      const s = await h.open('/events', { 'last-event-id': stale });
      const reset = await s.next();
      expect(reset.type, stale).toBe('reset');
      expect(reset.data.reason, stale).toMatch(/no longer kept|not an event id|newer than any/);
      // Its id is the stream's position: resuming from it loses nothing from here on.
      expect(reset.id).toBe(h.gw.gateway.events!.bus.position);
    }
  });

  it('filters by type and by domain (names, UUIDs, globs); a domain filter drops host events', async () => {
    const h = await listening({ domains: ['web1', 'web2', 'db1'] });
    const byType = await h.open('/events?types=agent');
    const byName = await h.open('/events?domain=web*&domain=nomatch');
    const byUuid = await h.open(`/events?domain=uuid:${h.fake.domain('db1').uuid}`);
    await h.opened(3);
    h.fake.emitLifecycle('web1', LifecycleEvent.SUSPENDED, 0);
    h.fake.emitAgentLifecycle('db1', AgentLifecycleState.CONNECTED, 1);
    h.fake.emitLifecycle('web2', LifecycleEvent.SUSPENDED, 0);
    h.fake.emitLifecycle('db1', LifecycleEvent.SUSPENDED, 0);
    await byUuid.next((e) => e.data.event === 'suspended');
    await byName.next((e) => e.data.domain.name === 'web2');
    expect(byType.events.map((e) => `${e.type}:${e.data.domain.name}`)).toEqual(['agent:db1']);
    expect(byName.events.map((e) => e.data.domain.name)).toEqual(['web1', 'web2']);
    expect(byUuid.events.map((e) => e.type)).toEqual(['agent', 'domain']);
  });

  it('never shows an identity a domain outside its patterns, whatever it asks for, live or replayed', async () => {
    const tokens = { web: newToken(), all: newToken() };
    const h = await listening({
      domains: ['web1', 'db1'],
      config: {
        auth: {
          mode: 'tokens',
          identities: [
            { name: 'web', tokenSha256: tokenSha256(tokens.web), scopes: ['read'], domains: ['web*'] },
            { name: 'all', tokenSha256: tokenSha256(tokens.all), scopes: ['read'], domains: ['*'] },
          ],
        } as never,
      },
    });
    const auth = (t: string) => ({ authorization: `Bearer ${t}` });
    const db1 = h.fake.domain('db1');
    const asking = [
      await h.open('/events', auth(tokens.web)),
      await h.open('/events?domain=db1', auth(tokens.web)),
      await h.open(`/events?domain=uuid:${db1.uuid}`, auth(tokens.web)),
      await h.open('/events?domain=*', auth(tokens.web)),
    ];
    const all = await h.open('/events', auth(tokens.all));
    await h.opened(5);
    const start = all.lastId!;
    h.fake.emitLifecycle('db1', LifecycleEvent.SUSPENDED, 0);
    h.fake.emitAgentLifecycle('db1', AgentLifecycleState.DISCONNECTED, 2);
    h.fake.emitLifecycle('web1', LifecycleEvent.SUSPENDED, 0);
    await all.next((e) => e.data.domain?.name === 'web1');
    await asking[0]!.next((e) => e.data.domain?.name === 'web1');
    await asking[3]!.next((e) => e.data.domain?.name === 'web1');
    for (const s of asking) expect(s.events.filter((e) => e.data.domain?.name === 'db1')).toEqual([]);
    const replay = await h.open('/events', { ...auth(tokens.web), 'last-event-id': start });
    await replay.next((e) => e.data.domain?.name === 'web1');
    expect(replay.events.map((e) => e.data.domain.name)).toEqual(['web1']);

    const refused = await h.open('/events');
    expect(refused.status).toBe(401);
    expect(refused.headers['content-type']).toMatch(/problem\+json/);
  });

  it('answers bad filters with 400 problem+json, before any stream opens', async () => {
    const h = await listening({ domains: ['web1'] });
    for (const query of [
      'types=domain,nonsense',
      'domain=web%01',
      `domain=${Array.from({ length: 1001 }, (_, i) => `vm${i}`).join(',')}`,
      'domain=uuid:',
      'types=',
    ]) {
      const s = await h.open(`/events?${query}`);
      if (query === 'types=') {
        // An empty list is no filter at all.
        expect(s.status, query).toBe(200);
        s.close();
        await h.opened(0);
        continue;
      }
      await s.end();
      expect(s.status, query).toBe(400);
      expect(s.headers['content-type'], query).toMatch(/problem\+json/);
    }
    expect(h.gw.gateway.events!.streamCount).toBe(0);
  });

  it('refuses streams past events.maxClients with 503 and Retry-After, and counts closed ones out', async () => {
    const h = await listening({ domains: ['web1'], config: { events: { maxClients: 2 } } });
    const a = await h.open();
    await h.open();
    await h.opened(2);
    const third = await h.open();
    await third.end();
    expect(third.status).toBe(503);
    expect(third.headers['retry-after']).toBe('5');
    expect(JSON.parse(third.text)).toMatchObject({ code: 'too_many_streams', status: 503 });
    a.close();
    await h.opened(1);
    const fourth = await h.open();
    expect(fourth.status).toBe(200);
  });

  it('drops a client that stops reading with an `overflow` event, instead of keeping its events in memory', async () => {
    const h = await listening({ domains: ['web1'], config: { events: { clientQueueBytes: 1024 * 1024 } } });
    const address = h.gw.app.server.address() as { port: number };
    // A client that sends its request and never reads: the socket's buffers fill, then the gateway's queue.
    const stalled = connect({ host: '127.0.0.1', port: address.port });
    stalled.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
    stalled.pause();
    const reader = await h.open('/events?types=agent');
    await h.opened(2);
    // The kernel's socket buffers take some megabytes first; then what waits in the gateway grows to the bound.
    const dropped = () => h.gw.logs.find((l) => l.msg === 'event stream dropped: its client reads too slowly');
    for (let i = 0; i < 200_000 && !dropped(); i++) {
      h.fake.emitLifecycle('web1', LifecycleEvent.SUSPENDED, 0);
      if (i % 200 === 199) await new Promise((r) => setTimeout(r, 1));
    }
    expect(dropped()?.reason).toMatch(/events.clientQueueBytes 1048576/);
    // Reading again within the grace period, the client gets what was queued, then `overflow`, then the end.
    let text = '';
    stalled.setEncoding('utf8');
    stalled.on('data', (chunk: string) => {
      text += chunk;
    });
    stalled.resume();
    await waitFor(() => text.endsWith('\r\n0\r\n\r\n'), 3000, 'the end of the chunked response');
    await h.opened(1);
    const tail = text.slice(-600);
    expect(tail).toMatch(
      /event: overflow\ndata: \{[^\n]*"type":"overflow"[^\n]*"reason":"the client read too slowly[^\n]*\}\n\n\r\n0\r\n\r\n$/,
    );
    const closed = h.gw.logs.find((l) => l.msg === 'event stream closed' && (l.peakQueuedBytes as number) > 1024 * 1024);
    // Bounded: the bound plus at most the frame that crossed it (and the overflow event).
    expect(closed!.peakQueuedBytes as number).toBeLessThan(1024 * 1024 + 4096);
    stalled.destroy();
    // The other stream is unaffected.
    h.fake.emitAgentLifecycle('web1', AgentLifecycleState.CONNECTED, 2);
    expect((await reader.next()).type).toBe('agent');
  });

  it('ends every stream with `closing` when the gateway stops, and the close does not wait for the clients', async () => {
    const h = await listening({ domains: ['web1'] });
    const streams = [await h.open(), await h.open('/events?types=host')];
    await h.opened(2);
    const started = Date.now();
    await h.gw.close();
    expect(Date.now() - started).toBeLessThan(5000);
    for (const s of streams) {
      await s.end();
      expect(s.events.at(-1)).toMatchObject({ type: 'closing', data: { type: 'closing', reason: expect.stringMatching(/shutting down/) } });
    }
  });

  it('reports a libvirt host going down and coming back', async () => {
    const h = await listening({ domains: ['web1'] });
    const s = await h.open('/events?types=host');
    await h.opened(1);
    h.fake.dropClients();
    h.fake.acceptConnections = false;
    const down = await s.next();
    expect(down.data).toMatchObject({ type: 'host', host: 'local', state: 'down', error: expect.any(String) });
    h.fake.acceptConnections = true;
    expect((await s.next(undefined, 5000)).data).toMatchObject({ type: 'host', host: 'local', state: 'up' });
    expect(s.events).toHaveLength(2);
  });

  it("reads a connected agent's addresses and sends them when its agent connects", async () => {
    const h = await listening({ domains: ['web1'], config: { events: { addressesPollMs: 60_000 } } });
    const s = await h.open('/events?types=addresses');
    await h.opened(1);
    h.fake.emitAgentLifecycle('web1', AgentLifecycleState.CONNECTED, 2);
    const e = await s.next();
    expect(e.data.domain.name).toBe('web1');
    expect(e.data.interfaces.length).toBeGreaterThan(0);
    for (const nic of e.data.interfaces) {
      expect(nic).toEqual({ name: expect.any(String), mac: expect.anything(), addresses: expect.any(Array) });
      expect(nic.name).not.toBe('lo');
    }
    // The same as GET /addresses says for it.
    const listed = await h.call('GET', '/addresses?domain=web1');
    expect(listed.body.domains[0].interfaces).toEqual(e.data.interfaces);
  });

  it('is not there with events.enabled false', async () => {
    const h = await listening({ domains: ['web1'], config: { events: { enabled: false } } });
    expect(h.gw.gateway.events).toBeNull();
    expect((await h.call('GET', '/events')).status).toBe(404);
  });
});
