// GET /addresses against the fake libvirtd: the fan-out (concurrent, one deadline), per-domain errors, the
// cache with its TTL and event invalidation, and the domain filter.
import { describe, expect, it } from 'vitest';
import { AddressBook } from '../../src/agent/guest/addresses.js';
import type { AgentService } from '../../src/agent/core/service.js';
import type { DomainDirectory } from '../../src/domains/directory.js';
import type { DomainRef } from '../../src/domains/vocabulary.js';
import type { LibvirtHosts } from '../../src/libvirt/hosts.js';
import { AgentLifecycleState, LifecycleEvent } from '../../src/libvirt/protocol.js';
import { DomainState, defaultAgentHandler, waitFor, type AgentHandler, type FakeLibvirtd } from '../support/fake-libvirtd.js';
import { build, request } from '../support/harness.js';
import type { GatewayOverrides, TestGateway } from '../support/test-gateway.js';

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;

async function setup(config: GatewayOverrides = {}) {
  ({ fake, gw } = await build({
    domains: ['vm1', 'vm2', { name: 'vm3-noagent', agent: 'none' }, { name: 'vm4-off', state: DomainState.SHUTOFF }],
    config,
  }));
}

const addresses = (query = '') => request(gw!, 'GET', `/addresses${query}`);

const nicCalls = (domain?: string) =>
  fake!.agentLog.filter((e) => e.execute === 'guest-network-get-interfaces' && (!domain || e.domain === domain)).length;
/** Every guest-network-get-interfaces waits until its release (in the order asked) is called. */
function holdInterfaces(): (() => void)[] {
  const releases: (() => void)[] = [];
  fake!.agentHandler = (dom, cmd, t) =>
    cmd.execute === 'guest-network-get-interfaces'
      ? new Promise((r) => releases.push(() => r(defaultAgentHandler(dom, cmd, t) as never)))
      : defaultAgentHandler(dom, cmd, t);
  return releases;
}

const byName = (body: { domains: { name: string }[] }, name: string) =>
  body.domains.find((d) => d.name === name) as Record<string, any> | undefined;

describe('GET /addresses', () => {
  it("lists every running domain's addresses, loopback left out, and each domain's error", async () => {
    await setup();
    const { status, body } = await addresses();
    expect(status).toBe(200);
    expect(body.domains.map((d: { name: string }) => d.name)).toEqual(['vm1', 'vm2', 'vm3-noagent']);
    expect(byName(body, 'vm1')).toMatchObject({
      uuid: fake!.domain('vm1').uuid,
      ok: true,
      cached: false,
      interfaces: [
        {
          name: 'ens2',
          mac: '52:54:00:a0:00:06',
          addresses: [
            { family: 'ipv4', address: '10.0.2.15', prefix: 24 },
            { family: 'ipv6', address: 'fec0::5054:ff:fea0:6', prefix: 64 },
            { family: 'ipv6', address: 'fe80::5054:ff:fea0:6', prefix: 64 },
          ],
        },
      ],
    });
    expect(byName(body, 'vm3-noagent')).toMatchObject({ ok: false, error: { code: 'agent_not_configured', status: 503 } });
    expect(body.timeoutMs).toBe(5000);
  });

  it('asks every domain at once', async () => {
    await setup();
    const releases = holdInterfaces();
    const pending = addresses();
    await waitFor(() => releases.length === 2, 5000, 'both domains asked');
    expect(fake!.agentInFlight('vm1') + fake!.agentInFlight('vm2')).toBe(2);
    for (const release of releases) release();
    const { body } = await pending;
    expect(body.domains.filter((d: { ok: boolean }) => d.ok).length).toBe(2);
  });

  it('answers by the one deadline: a silent domain is marked deadline_exceeded, the others ok', async () => {
    await setup();
    fake!.agentHandler = (dom, cmd, t) =>
      dom.name === 'vm2' && cmd.execute === 'guest-network-get-interfaces' ? { hang: true } : defaultAgentHandler(dom, cmd, t);
    const { status, body } = await addresses('?timeoutMs=300');
    expect(status).toBe(200);
    expect(body.timeoutMs).toBe(300);
    expect(byName(body, 'vm1')?.ok).toBe(true);
    expect(byName(body, 'vm2')).toMatchObject({ ok: false, error: { code: 'deadline_exceeded', status: 504 } });
  });

  it('passes on agent errors per domain', async () => {
    await setup();
    const handler: AgentHandler = (dom, cmd, t) =>
      dom.name === 'vm1' && cmd.execute === 'guest-network-get-interfaces'
        ? { error: { class: 'GenericError', desc: 'getifaddrs failed' } }
        : defaultAgentHandler(dom, cmd, t);
    fake!.agentHandler = handler;
    const { body } = await addresses();
    expect(byName(body, 'vm1')).toMatchObject({ ok: false, error: { code: 'agent_error', status: 502 } });
    expect(byName(body, 'vm1')!.error.detail).toContain('getifaddrs failed');
    expect(byName(body, 'vm2')?.ok).toBe(true);
  });

  it('serves from cache until an agent or lifecycle event, and does not cache transient errors', async () => {
    await setup();
    await addresses();
    const second = await addresses();
    expect(byName(second.body, 'vm1')?.cached).toBe(true);
    expect(byName(second.body, 'vm3-noagent')?.cached).toBe(true);
    expect(nicCalls()).toBe(2);

    fake!.emitAgentLifecycle('vm1', AgentLifecycleState.CONNECTED);
    fake!.emitLifecycle('vm2', LifecycleEvent.RESUMED);
    await waitFor(async () => byName((await addresses()).body, 'vm1')?.cached === false, 5000, 'vm1 asked again');
    expect(nicCalls('vm1')).toBe(2);
    expect(nicCalls('vm2')).toBe(2);
  });

  it('asks again once the TTL has passed', async () => {
    await setup({ addresses: { cacheTtlMs: 50 } });
    await addresses();
    await new Promise((r) => setTimeout(r, 100));
    const again = await addresses();
    expect(byName(again.body, 'vm1')?.cached).toBe(false);
    expect(nicCalls('vm1')).toBe(2);
  });

  it('filters by names and UUIDs, repeated or comma-separated, and lists stopped and unknown ones with their error', async () => {
    await setup();
    const vm2 = fake!.domain('vm2').uuid;
    const { status, body } = await addresses(`?domain=vm1,${vm2.toUpperCase()}&domain=vm4-off&domain=nope`);
    expect(status).toBe(200);
    expect(body.domains.map((d: { name: string }) => d.name)).toEqual(['nope', 'vm1', 'vm2', 'vm4-off']);
    expect(byName(body, 'nope')).toMatchObject({ uuid: null, ok: false, error: { code: 'domain_not_found', status: 404 } });
    expect(byName(body, 'vm4-off')).toMatchObject({ ok: false, error: { code: 'domain_not_running', status: 409 } });
    expect(byName(body, 'vm2')?.ok).toBe(true);
    expect(nicCalls()).toBe(2);
  });

  it('refuses a bad deadline', async () => {
    await setup();
    expect((await addresses('?timeoutMs=0')).status).toBe(400);
    expect((await addresses('?timeoutMs=abc')).status).toBe(400);
  });
});

/** An AddressBook over these domains and this agent alone, asking one domain at a time, nothing cached. */
function oneAtATime(refs: DomainRef[], agent: AgentService): AddressBook {
  const directory = {
    listRefs: async () => ({ refs, failed: [] }),
    splitId: (id: string) => ({ host: undefined, rest: id }),
    nova: async () => null,
    knownNova: () => null,
  };
  return new AddressBook({ on: () => {} } as unknown as LibvirtHosts, directory as unknown as DomainDirectory, agent, {
    timeoutMs: 5000,
    cacheTtlMs: 0,
    concurrency: 1,
    slotHoldMs: 60_000,
  });
}

describe('GET /addresses: the fan-out asks at most addresses.concurrency domains at once', () => {
  it('asks the next domain when a slot frees, and answers every one', async () => {
    await setup({ addresses: { concurrency: 1, slotHoldMs: 60_000 } });
    const releases = holdInterfaces();
    const pending = addresses();
    await waitFor(() => releases.length === 1, 5000, 'the first domain asked');
    // Given time, the second is still not asked while the first holds the only slot.
    await new Promise((r) => setTimeout(r, 100));
    expect(releases.length).toBe(1);
    expect(fake!.agentInFlight('vm1') + fake!.agentInFlight('vm2')).toBe(1);
    releases[0]!();
    await waitFor(() => releases.length === 2, 5000, 'the second domain asked once the first answered');
    releases[1]!();
    const { body } = await pending;
    expect(body.domains.filter((d: { ok: boolean }) => d.ok).length).toBe(2);
    expect(byName(body, 'vm3-noagent')).toMatchObject({ ok: false, error: { code: 'agent_not_configured' } });
    expect(fake!.agentPeakInFlight('vm1') + fake!.agentPeakInFlight('vm2')).toBe(2);
  });

  it('never sends to a domain whose turn comes after the deadline', async () => {
    const refs: DomainRef[] = ['a', 'b'].map((name, i) => ({
      host: 'local',
      name,
      uuid: `00000000-0000-4000-8000-00000000000${i}`,
      id: i + 1,
    }));
    const asked: string[] = [];
    let answerA: (() => void) | null = null;
    const agent = {
      execute: (dom: DomainRef) => {
        asked.push(dom.name);
        // a's first call is deaf to its deadline (as a command already written to a socket is): it ends when told to.
        if (dom.name === 'a' && !answerA) return new Promise<[]>((r) => (answerA = () => r([])));
        return Promise.resolve([]);
      },
    } as unknown as AgentService;
    const book = oneAtATime(refs, agent);
    const { entries } = await book.collect(null, 50);
    expect(entries.map((e) => [e.name, e.result.ok || e.result.error.code])).toEqual([
      ['a', 'deadline_exceeded'],
      ['b', 'deadline_exceeded'],
    ]);
    // Each says why: a was asked and did not answer; b never had its turn.
    const [a, b] = entries.map((e) => (e.result.ok ? '' : e.result.error.message));
    expect(a).toBe('the guest agent did not answer within the 50 ms deadline');
    expect(b).toBe('the domain was still waiting for its turn in the fan-out (addresses.concurrency) at the 50 ms deadline');
    await new Promise((r) => setTimeout(r, 20));
    answerA!();
    await new Promise((r) => setImmediate(r));
    expect(asked).toEqual(['a']);
    // The slot is free again: the next call asks both.
    const again = await book.collect(null, 1000);
    expect(again.entries.every((e) => e.result.ok)).toBe(true);
    expect(asked).toEqual(['a', 'a', 'b']);
  });

  it('keeps a domain waiting for its turn for a caller with time left, though the caller it first waited for gave up', async () => {
    const refs: DomainRef[] = ['a', 'b'].map((name, i) => ({
      host: 'local',
      name,
      uuid: `00000000-0000-4000-8000-00000000000${i}`,
      id: i + 1,
    }));
    const asked: string[] = [];
    let answerA: (() => void) | null = null;
    const agent = {
      execute: (dom: DomainRef) => {
        asked.push(dom.name);
        if (dom.name === 'a') return new Promise<[]>((r) => (answerA = () => r([])));
        return Promise.resolve([]);
      },
    } as unknown as AgentService;
    const book = oneAtATime(refs, agent);
    // The first caller's 50 ms pass while b waits behind a; a second caller, with 2 s, joins b's fetch meanwhile.
    const short = book.collect(null, 50);
    const long = book.collect(null, 2000);
    expect((await short).entries.map((e) => e.result.ok)).toEqual([false, false]);
    answerA!();
    const { entries } = await long;
    expect(entries.map((e) => [e.name, e.result.ok])).toEqual([
      ['a', true],
      ['b', true],
    ]);
    expect(asked).toEqual(['a', 'b']);
  });

  it('a domain that has not answered within slotHoldMs gives its place up: a hung agent does not hold the others back', async () => {
    await setup({ addresses: { concurrency: 1, slotHoldMs: 50 } });
    fake!.agentHandler = (dom, cmd, t) =>
      dom.name === 'vm1' && cmd.execute === 'guest-network-get-interfaces' ? { hang: true } : defaultAgentHandler(dom, cmd, t);
    const { body } = await addresses('?timeoutMs=1000');
    expect(byName(body, 'vm1')).toMatchObject({ ok: false, error: { code: 'deadline_exceeded' } });
    expect(byName(body, 'vm2')?.ok).toBe(true);
    expect(byName(body, 'vm3-noagent')).toMatchObject({ ok: false, error: { code: 'agent_not_configured' } });
  });
});
