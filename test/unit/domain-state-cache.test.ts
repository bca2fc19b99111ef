// What libvirt said of a host's domains is kept while its events flow (src/domains/event-backed-cache.ts): the
// routes that describe or list domains ask libvirt again only after a lifecycle event, or after events were lost.
import { describe, expect, it } from 'vitest';
import { LifecycleEvent } from '../../src/libvirt/protocol.js';
import { RemoteProc } from '../../src/libvirt/procedures.js';
import { DomainState, waitFor } from '../support/fake-libvirtd.js';
import { build } from '../support/harness.js';

describe('domain states and lists kept while libvirt events flow', () => {
  it('answers GET /domains/{d}, GET /domains and GET /addresses again without asking libvirt', async () => {
    const { fake, call } = await build({ domains: ['web1', 'web2'] });
    const calls = () => [fake.callCount(RemoteProc.DOMAIN_GET_STATE), fake.callCount(RemoteProc.CONNECT_LIST_ALL_DOMAINS)];
    expect((await call('GET', '/domains/web1')).body.state).toBe('running');
    await call('GET', '/domains');
    await call('GET', '/addresses');
    const after = calls();
    for (let i = 0; i < 5; i++) {
      expect((await call('GET', '/domains/web1')).body.state).toBe('running');
      expect((await call('GET', '/domains')).body.domains).toHaveLength(2);
      expect((await call('GET', '/addresses')).body.domains).toHaveLength(2);
    }
    expect(calls()).toEqual(after);
  });

  it('asks again after a lifecycle event, and sees the new state and list', async () => {
    const { fake, call } = await build({ domains: ['web1'] });
    await call('GET', '/domains/web1');
    await call('GET', '/domains');
    fake.setState('web1', DomainState.PAUSED);
    fake.emitLifecycle('web1', LifecycleEvent.SUSPENDED, 0);
    await waitFor(async () => (await call('GET', '/domains/web1')).body.state === 'paused', 2000, 'the paused state');
    fake.addDomain({ name: 'web2' });
    fake.emitLifecycle('web2', LifecycleEvent.DEFINED, 0);
    await waitFor(async () => (await call('GET', '/domains')).body.domains.length === 2, 2000, 'the new domain');
  });

  it('does not keep an answer read while an event arrived: the next request asks again', async () => {
    const { fake, call } = await build({ domains: ['web1'] });
    const hold = fake.holdReplies(RemoteProc.DOMAIN_GET_STATE);
    const pending = call('GET', '/domains/web1');
    await hold.waitUntilHeld(1);
    // The state libvirt read is running; the domain is paused before the answer arrives, and says so.
    fake.setState('web1', DomainState.PAUSED);
    fake.emitLifecycle('web1', LifecycleEvent.SUSPENDED, 0);
    await new Promise((r) => setTimeout(r, 50));
    hold.release();
    expect((await pending).body.state).toBe('running');
    expect((await call('GET', '/domains/web1')).body.state).toBe('paused');
  });

  it('reads afresh once events were lost: a change while they were down is seen', async () => {
    const { fake, gw, call } = await build({ domains: ['web1'] });
    await call('GET', '/domains/web1');
    const pool = gw.gateway.hosts.list[0]!.pool;
    const resubscribed = new Promise<void>((resolve) => pool.once('eventsSubscribed', () => resolve()));
    fake.dropClients();
    // libvirt restarted: the domain changed state meanwhile, and no event says so.
    fake.setState('web1', DomainState.PAUSED);
    await resubscribed;
    expect((await call('GET', '/domains/web1')).body.state).toBe('paused');
  });
});
