// Conditional GET: an ETag on the domain list, a domain, the fleet's addresses and the guest facts, and 304 with no
// body while If-None-Match still matches; a changed answer gets a new tag. The agent's own chatter (guest-info) aside,
// a 304 of a guest fact still asks the agent: the tag says the answer did not change, not that nothing was asked.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { AgentLifecycleState, LifecycleEvent } from '../../src/libvirt/protocol.js';
import { DomainState, defaultAgentHandler, waitFor, type AgentHandler } from '../support/fake-libvirtd.js';
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

  it('GET /addresses: a kept answer is given again only while every entry is the same', async () => {
    let web1Address = '10.0.2.15';
    const agent: AgentHandler = async (dom, cmd, t) => {
      const reply = await defaultAgentHandler(dom, cmd, t);
      if (cmd.execute !== 'guest-network-get-interfaces' || dom.name !== 'web1') return reply;
      return { raw: (reply as { raw: string }).raw.replaceAll('"10.0.2.15"', JSON.stringify(web1Address)) };
    };
    const { fake, call } = await build({ domains: ['web1', 'web2'], agent });
    const ipv4 = (body: { domains: { name: string; interfaces: { addresses: { address: string }[] }[] }[] }, name: string) =>
      body.domains.find((d) => d.name === name)!.interfaces[0]!.addresses[0]!.address;
    const first = await call('GET', '/addresses');
    const kept = await call('GET', '/addresses');
    expect(kept.headers.etag).toBe(first.headers.etag);
    expect(kept.raw.replace(/"elapsedMs":[\d.]+/, '')).toBe(
      first.raw.replace(/"cached":false/g, '"cached":true').replace(/"elapsedMs":[\d.]+/, ''),
    );
    // Another question in between (another caller's filter) does not leak into this one's answer.
    const narrow = await call('GET', '/addresses?domain=web2');
    expect(narrow.body.domains.map((d: { name: string }) => d.name)).toEqual(['web2']);
    expect(narrow.headers.etag).not.toBe(first.headers.etag);
    // web1's agent now says another address; its agent event drops what was kept of it.
    web1Address = '10.0.2.99';
    fake.emitAgentLifecycle('web1', AgentLifecycleState.CONNECTED);
    await waitFor(async () => ipv4((await call('GET', '/addresses')).body, 'web1') === '10.0.2.99', 5000, 'the new address');
    const changed = await call('GET', '/addresses');
    expect(ipv4(changed.body, 'web1')).toBe('10.0.2.99');
    expect(ipv4(changed.body, 'web2')).toBe('10.0.2.15');
    expect(changed.headers.etag).not.toBe(first.headers.etag);
    expect((await call('GET', '/addresses', undefined, { 'if-none-match': first.headers.etag as string })).status).toBe(200);
    expect((await call('GET', '/addresses', undefined, { 'if-none-match': changed.headers.etag as string })).status).toBe(304);
  });

  it('GET /domains/{domain}: the tag follows the body, whichever bodies were answered before', async () => {
    const { fake, call } = await build({ domains: ['web1', 'web2'] });
    const tags = new Map<string, string>();
    // More bodies than the scope remembers (8), some asked again: each keeps its own tag.
    for (let round = 0; round < 2; round++) {
      for (const url of ['/domains/web1', '/domains/web2', ...Array.from({ length: 20 }, (_, i) => `/domains/web1?timeoutMs=${i + 1}`)]) {
        const r = await call('GET', url);
        const key = r.raw;
        expect(r.headers.etag).toBe(`"${createHash('sha1').update(r.raw).digest('base64')}"`);
        if (tags.has(key)) expect(r.headers.etag).toBe(tags.get(key));
        tags.set(key, r.headers.etag as string);
      }
    }
    fake.setState('web1', DomainState.PAUSED);
    fake.emitLifecycle('web1', LifecycleEvent.SUSPENDED, 0);
    await waitFor(async () => (await call('GET', '/domains/web1')).body.state === 'paused', 2000, 'the event');
    const paused = await call('GET', '/domains/web1');
    expect(paused.headers.etag).toBe(`"${createHash('sha1').update(paused.raw).digest('base64')}"`);
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
