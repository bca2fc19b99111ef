// Conditional GET: an ETag on the domain list, a domain, the fleet's addresses and the guest facts, and 304 with no
// body while If-None-Match still matches; a changed answer gets a new tag. The agent's own chatter (guest-info) aside,
// a 304 of a guest fact still asks the agent: the tag says the answer did not change, not that nothing was asked.
import { describe, expect, it } from 'vitest';
import { LifecycleEvent } from '../../src/libvirt/protocol.js';
import { DomainState, waitFor } from '../support/fake-libvirtd.js';
import { build } from '../support/harness.js';

describe('ETag and If-None-Match', () => {
  it('GET /domains and GET /domains/{domain}: 304 while unchanged, a new tag once a domain changes', async () => {
    const { fake, call } = await build({ domains: ['web1'] });
    for (const url of ['/domains', '/domains/web1']) {
      const first = await call('GET', url);
      expect(first.status).toBe(200);
      const etag = first.headers.etag as string;
      expect(etag).toMatch(/^"[A-Za-z0-9+/=]+"$/);
      const again = await call('GET', url, undefined, { 'if-none-match': etag });
      expect(again.status).toBe(304);
      expect(again.raw).toBe('');
      expect(again.headers.etag).toBe(etag);
      expect((await call('GET', url, undefined, { 'if-none-match': '"something-else"' })).status).toBe(200);
    }
    const before = (await call('GET', '/domains')).headers.etag;
    fake.setState('web1', DomainState.PAUSED);
    fake.emitLifecycle('web1', LifecycleEvent.SUSPENDED, 0);
    await waitFor(async () => (await call('GET', '/domains/web1')).body.state === 'paused', 2000, 'the event');
    const after = await call('GET', '/domains', undefined, { 'if-none-match': before as string });
    expect(after.status).toBe(200);
    expect(after.headers.etag).not.toBe(before);
  });

  it('GET /addresses: a weak tag over the addresses, the same whether cached and however long it took', async () => {
    const { call } = await build({ domains: ['web1', 'web2'] });
    const first = await call('GET', '/addresses');
    expect(first.body.domains.map((d: { cached: boolean }) => d.cached)).toEqual([false, false]);
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^W\/"/);
    const cached = await call('GET', '/addresses');
    expect(cached.body.domains.map((d: { cached: boolean }) => d.cached)).toEqual([true, true]);
    expect(cached.headers.etag).toBe(etag);
    expect((await call('GET', '/addresses', undefined, { 'if-none-match': etag })).status).toBe(304);
    // A narrower question is another answer.
    expect((await call('GET', '/addresses?domain=web1', undefined, { 'if-none-match': etag })).status).toBe(200);
  });

  it('a guest fact: 304 while the agent says the same', async () => {
    const { call } = await build({ domains: ['web1'] });
    const first = await call('GET', '/domains/web1/hostname');
    expect(first.body.hostname).toBe('web1');
    expect((await call('GET', '/domains/web1/hostname', undefined, { 'if-none-match': first.headers.etag as string })).status).toBe(304);
  });

  it('no ETag on what is not a conditional GET: an action, a problem answer of another route', async () => {
    const { call } = await build({ domains: ['web1'] });
    const ping = await call('POST', '/domains/web1/agent/sync');
    expect(ping.headers.etag).toBeUndefined();
    const missing = await call('GET', '/domains/web1/agent/ping?timeoutMs=x');
    expect(missing.headers.etag).toBeUndefined();
  });
});
