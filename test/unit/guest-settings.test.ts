// Guest clock, vCPU and memory-block routes in process against the fake libvirtd: what reaches the agent,
// what is refused before it does (400/409), and how the agent's answers and refusals come back.
import { describe, expect, it } from 'vitest';
import type { FakeLibvirtd } from '../support/fake-libvirtd.js';
import { fakeGuestState, guestFactsAgent, type FakeGuestState } from '../support/guest-facts-agent.js';
import { build, request, type Method } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;
let state: FakeGuestState;

async function setup() {
  state = fakeGuestState();
  ({ fake, gw } = await build({ domains: ['web1'], agent: guestFactsAgent(state) }));
}

const call = (method: Method, url: string, body?: unknown) => request(gw!, method, url, body);

const sent = () => fake!.agentLog.filter((e) => e.execute !== 'guest-info');
const sentNames = () => sent().map((e) => e.execute);

describe('GET /domains/{domain}/time', () => {
  it('answers the guest clock in ISO 8601 and nanoseconds', async () => {
    await setup();
    const r = await call('GET', '/domains/web1/time');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      domain: { host: 'local', name: 'web1', uuid: fake!.domain('web1').uuid },
      time: { iso: '2026-11-28T00:07:14.961949000Z', ns: '1795824434961949000' },
    });
    expect(sentNames()).toEqual(['guest-get-time']);
  });
});

describe('PUT /domains/{domain}/time', () => {
  it('sets a given ISO time, sends it in nanoseconds and reads the clock back', async () => {
    await setup();
    const r = await call('PUT', '/domains/web1/time', { time: '2030-01-01T00:00:00+01:00' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      source: 'given',
      requested: { iso: '2029-12-31T23:00:00.000000000Z', ns: '1893452400000000000' },
      time: { ns: '1893452400000000000' },
    });
    expect(sentNames()).toEqual(['guest-set-time', 'guest-get-time']);
    // Exact, as a JSON integer (read back as a bigint by the fake, as libvirt's parser keeps it).
    expect(sent()[0]!.arguments).toEqual({ time: 1893452400000000000n });
  });

  it('takes nanoseconds as a number or a decimal string', async () => {
    await setup();
    expect((await call('PUT', '/domains/web1/time', { time: { ns: 1_000_000_000_000 } })).body.requested).toEqual({
      iso: '1970-01-01T00:16:40.000000000Z',
      ns: '1000000000000',
    });
    expect((await call('PUT', '/domains/web1/time', { time: { ns: '1893452400000000001' } })).body.requested.ns).toBe(
      '1893452400000000001',
    );
    // Sent to the agent to the nanosecond (a double would have made it ...000000000), and read back so.
    expect(sent()[2]!.arguments).toEqual({ time: 1893452400000000001n });
    expect(state.timeNs).toBe(1893452400000000001n);
    // Above 2^53 as a JSON number: taken, as the double it parses to.
    const big = await call('PUT', '/domains/web1/time', { time: { ns: 1893452400000000000 } });
    expect(big.status).toBe(200);
    expect(big.body.requested.ns).toBe(BigInt(1893452400000000000).toString());
  });

  it("sets the host's clock", async () => {
    await setup();
    const before = BigInt(Date.now()) * 1_000_000n;
    const r = await call('PUT', '/domains/web1/time', { source: 'host' });
    expect(r.status).toBe(200);
    expect(r.body.source).toBe('host');
    expect(BigInt(r.body.requested.ns)).toBeGreaterThanOrEqual(before);
    expect(typeof sent()[0]!.arguments).toBe('object');
  });

  it('sets the clock from the hardware clock by sending no arguments', async () => {
    await setup();
    const r = await call('PUT', '/domains/web1/time', { source: 'hardware-clock' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ source: 'hardware-clock', requested: null, time: { ns: String(state.rtcNs) } });
    expect(sent()[0]).toMatchObject({ execute: 'guest-set-time' });
    expect(sent()[0]!.arguments).toBeUndefined();
  });

  it.each([
    ['a time before 1970', { time: '1969-12-31T23:59:59Z' }],
    ['a time past 2262', { time: '2263-01-01T00:00:00Z' }],
    ['nanoseconds past int64', { time: { ns: '99999999999999999999' } }],
    ['negative nanoseconds', { time: { ns: -1 } }],
    ['a time without a zone', { time: '2030-01-01T00:00:00' }],
    ['an impossible date', { time: '2030-02-30T00:00:00Z' }],
    ['both a time and a source', { time: '2030-01-01T00:00:00Z', source: 'host' }],
    ['an unknown source', { source: 'ntp' }],
    ['an empty body', {}],
    ['fractional nanoseconds', { time: { ns: 1.5 } }],
  ])('answers 400 for %s, sending nothing', async (_what, body) => {
    await setup();
    const r = await call('PUT', '/domains/web1/time', body);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('invalid_request');
    expect(r.headers['content-type']).toMatch(/problem\+json/);
    expect(sent()).toHaveLength(0);
  });

  it("answers 400 when the guest kernel refuses the time (settimeofday's EINVAL)", async () => {
    await setup();
    state.replies['guest-set-time'] = { error: { class: 'GenericError', desc: 'Failed to set time to guest: Invalid argument' } };
    const r = await call('PUT', '/domains/web1/time', { time: '1970-01-01T00:00:01Z' });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'invalid_request', agentDesc: 'Failed to set time to guest: Invalid argument' });
  });

  it('passes other agent errors on as 502 (hwclock missing)', async () => {
    await setup();
    state.replies['guest-set-time'] = { error: { class: 'GenericError', desc: 'this feature or command is not currently supported' } };
    const r = await call('PUT', '/domains/web1/time', { source: 'hardware-clock' });
    expect(r.status).toBe(502);
    expect(r.body.code).toBe('agent_error');
  });
});

describe('vCPUs', () => {
  it('GET /vcpus lists them sorted, with counts', async () => {
    await setup();
    state.vcpus.reverse();
    const r = await call('GET', '/domains/web1/vcpus');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      online: 2,
      total: 3,
      vcpus: [
        { id: 0, online: true, canOffline: false },
        { id: 1, online: true, canOffline: true },
        { id: 2, online: false, canOffline: true },
      ],
    });
  });

  it('PATCH applies the changes in order and answers how many were applied', async () => {
    await setup();
    const r = await call('PATCH', '/domains/web1/vcpus', {
      vcpus: [
        { id: 2, online: true },
        { id: 1, online: false },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ requested: 2, applied: 2, complete: true, notApplied: [] });
    expect(r.body.vcpus.map((v: { online: boolean }) => v.online)).toEqual([true, false, true]);
    expect(sentNames()).toEqual(['guest-get-vcpus', 'guest-set-vcpus', 'guest-get-vcpus']);
    expect(sent()[1]!.arguments).toEqual({
      vcpus: [
        { 'logical-id': 2, online: true },
        { 'logical-id': 1, online: false },
      ],
    });
  });

  it('reports a partial application: the agent stopped at the first failure', async () => {
    await setup();
    // The guest lists vCPU 3, but it is gone by the time the agent applies the change.
    state.replies['guest-get-vcpus'] = { return: [...state.vcpus, { 'logical-id': 3, online: false, 'can-offline': true }] };
    const r = await call('PATCH', '/domains/web1/vcpus', {
      vcpus: [
        { id: 2, online: true },
        { id: 3, online: true },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ requested: 2, applied: 1, complete: false, notApplied: [{ id: 3, online: true }] });
  });

  it.each([
    ['an id the guest does not have', [{ id: 7, online: true }], /no vCPU 7/],
    [
      'an id listed twice',
      [
        { id: 1, online: true },
        { id: 1, online: false },
      ],
      /more than once/,
    ],
    ['a negative id', [{ id: -1, online: true }], /./],
    [
      'every vCPU offline',
      [
        { id: 1, online: false },
        { id: 0, online: false },
      ],
      /every vCPU/,
    ],
    ['an empty list', [], /./],
  ])('answers 400 for %s without changing anything', async (_what, vcpus, detail) => {
    await setup();
    const r = await call('PATCH', '/domains/web1/vcpus', { vcpus });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('invalid_request');
    expect(r.body.detail).toMatch(detail);
    expect(sentNames()).not.toContain('guest-set-vcpus');
  });

  it('answers 409 for a vCPU the guest says cannot go offline, without sending the change', async () => {
    await setup();
    const r = await call('PATCH', '/domains/web1/vcpus', { vcpus: [{ id: 0, online: false }] });
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('state_conflict');
    expect(sentNames()).toEqual(['guest-get-vcpus']);
  });

  it("maps the agent's own refusal to offline a CPU to 409", async () => {
    await setup();
    // The listing claims vCPU 0 can go offline; the agent then refuses, as qemu-ga does for the boot CPU.
    state.replies['guest-get-vcpus'] = { return: state.vcpus.map((v) => ({ ...v, 'can-offline': true })) };
    const r = await call('PATCH', '/domains/web1/vcpus', { vcpus: [{ id: 0, online: false }] });
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({
      code: 'state_conflict',
      agentDesc: "logical processor #0 can't be offlined",
      command: 'guest-set-vcpus',
    });
  });
});

describe('memory blocks', () => {
  it('GET /memory-blocks and /memory-block-info', async () => {
    await setup();
    const blocks = await call('GET', '/domains/web1/memory-blocks');
    expect(blocks.body.blocks).toEqual([
      { index: 0, online: true, canOffline: false },
      { index: 1, online: true, canOffline: true },
      { index: 2, online: false, canOffline: true },
    ]);
    const info = await call('GET', '/domains/web1/memory-block-info');
    expect(info.body).toMatchObject({ domain: { name: 'web1' }, blockSizeBytes: 134217728 });
  });

  it('PATCH answers a result per block', async () => {
    await setup();
    state.replies['guest-get-memory-blocks'] = { return: [...state.memoryBlocks, { 'phys-index': 9, online: false, 'can-offline': true }] };
    const r = await call('PATCH', '/domains/web1/memory-blocks', {
      blocks: [
        { index: 2, online: true },
        { index: 9, online: true },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      applied: 1,
      results: [
        { index: 2, online: true, result: 'success', errno: null },
        { index: 9, online: true, result: 'not-found', errno: 2 },
      ],
    });
    expect(sent()[1]!.arguments).toEqual({
      'mem-blks': [
        { 'phys-index': 2, online: true },
        { 'phys-index': 9, online: true },
      ],
    });
  });

  it.each([
    ['a block the guest does not have', [{ index: 5, online: true }], 400],
    [
      'a block listed twice',
      [
        { index: 1, online: true },
        { index: 1, online: true },
      ],
      400,
    ],
    [
      'every block offline',
      [
        { index: 1, online: false },
        { index: 0, online: false },
      ],
      400,
    ],
    ['a block that cannot go offline', [{ index: 0, online: false }], 409],
  ])('refuses %s without sending the change', async (_what, blocks, status) => {
    await setup();
    const r = await call('PATCH', '/domains/web1/memory-blocks', { blocks });
    expect(r.status).toBe(status);
    expect(sentNames()).not.toContain('guest-set-memory-blocks');
  });
});
