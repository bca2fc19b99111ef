// POST /domains/{domain}/exec and GET /domains/{domain}/exec/{pid} against the fake libvirtd: what reaches
// the agent, output decoding, waiting, the result cache after the agent reaps, and error mapping.
import { describe, expect, it } from 'vitest';
import { PerDomainCache } from '../../src/agent/core/per-domain-cache.js';
import { waitFor, type FakeLibvirtd } from '../support/fake-libvirtd.js';
import { GuestControlAgent } from '../support/guest-control-agent.js';
import { FIXTURE_VERSIONS, fixtureError, type FixtureVersion } from '../support/qga-fixtures.js';
import { build, request, type Method } from '../support/harness.js';
import type { GatewayOverrides, TestGateway } from '../support/test-gateway.js';

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;
let agent: GuestControlAgent;

async function setup(config: GatewayOverrides = {}, agentVersion: FixtureVersion = '7.2') {
  agent = new GuestControlAgent();
  agent.agentVersion = agentVersion;
  ({ fake, gw } = await build({ domains: ['web1', 'web2'], agent: agent.handler, config }));
}

const sent = () => fake!.agentLog.filter((e) => e.execute !== 'guest-info');

const call = (method: Method, url: string, payload?: unknown) => request(gw!, method, url, payload);

describe('POST /domains/{domain}/exec', () => {
  it('sends path, args, env, stdin (base64) and capture-output, and answers 201 with the pid and a Location', async () => {
    await setup();
    const r = await call('POST', '/domains/web1/exec', {
      path: '/bin/sh',
      args: ['-c', 'cat'],
      env: { A: '1', LANG: 'C' },
      input: { text: 'héllo' },
    });
    expect(r.status).toBe(201);
    expect(r.headers.location).toBe('/domains/web1/exec/1000');
    expect(r.body).toMatchObject({ domain: { name: 'web1' }, pid: 1000, exited: false, exitCode: null, stdout: null });
    expect(sent()).toHaveLength(1);
    expect(sent()[0]!.arguments).toEqual({
      path: '/bin/sh',
      arg: ['-c', 'cat'],
      env: ['A=1', 'LANG=C'],
      'input-data': Buffer.from('héllo').toString('base64'),
      'capture-output': true,
    });
  });

  it('passes base64 stdin through and leaves out what was not given', async () => {
    await setup();
    await call('POST', '/domains/web1/exec', { path: '/bin/true', input: { base64: 'AAEC/w==' }, captureOutput: false });
    expect(sent()[0]!.arguments).toEqual({ path: '/bin/true', 'input-data': 'AAEC/w==', 'capture-output': false });
  });

  it('waits for the exit and answers the decoded result: text when UTF-8, base64 otherwise', async () => {
    await setup();
    agent.onExec = () => ({ runningPolls: 2, exitcode: 3, out: Buffer.from('out\n'), err: Buffer.from([0xff, 0x00, 0x80]) });
    const r = await call('POST', '/domains/web1/exec', { path: '/bin/sh', args: ['-c', 'x'], wait: { timeoutMs: 10_000 } });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({
      domain: { host: 'local', name: 'web1', uuid: fake!.domain('web1')!.uuid },
      pid: 1000,
      exited: true,
      exitCode: 3,
      signal: null,
      stdout: { encoding: 'text', data: 'out\n', bytes: 4, truncated: false },
      stderr: { encoding: 'base64', data: '/wCA', bytes: 3, truncated: false },
    });
    expect(sent().map((e) => e.execute)).toEqual(['guest-exec', 'guest-exec-status', 'guest-exec-status', 'guest-exec-status']);
  });

  it('answers the still-running status when the wait bound passes', async () => {
    await setup();
    agent.onExec = () => ({ runningPolls: 1_000_000, exitcode: 0 });
    const r = await call('POST', '/domains/web1/exec', { path: '/bin/sleep', args: ['100'], wait: { timeoutMs: 200 } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ exited: false, exitCode: null, stdout: null, stderr: null });
    expect(sent().filter((e) => e.execute === 'guest-exec-status').length).toBeGreaterThanOrEqual(1);
  });

  it.each(FIXTURE_VERSIONS)(
    'maps a program that does not exist to 404 with the agent message, and one it cannot run to 403 (qemu-ga %s wording, recorded)',
    async (version) => {
      await setup();
      agent.onExec = () => ({ error: fixtureError(version, 'host.guest-exec.missing-program') });
      const r = await call('POST', '/domains/web1/exec', { path: '/nope' });
      expect(r.status).toBe(404);
      expect(r.body).toMatchObject({
        code: 'file_not_found',
        command: 'guest-exec',
        agentDesc: expect.stringContaining('No such file or directory'),
      });
      expect(r.body.detail).toContain('Failed to execute child process');
      agent.onExec = () => ({ error: fixtureError(version, 'host.guest-exec.not-executable') });
      expect((await call('POST', '/domains/web1/exec', { path: '/nope' })).body.code).toBe('permission_denied');
      agent.onExec = () => ({ error: { class: 'GenericError', desc: 'something else' } });
      expect((await call('POST', '/domains/web1/exec', { path: '/nope' })).status).toBe(502);
    },
  );

  it.each([
    ['no path', {}],
    ['an empty path', { path: '' }],
    ['an env name with "="', { path: '/bin/true', env: { 'A=B': 'x' } }],
    ['bad base64 stdin', { path: '/bin/true', input: { base64: '***' } }],
    ['stdin as both text and base64', { path: '/bin/true', input: { text: 'a', base64: 'YQ==' } }],
    ['a wait over the bound', { path: '/bin/true', wait: { timeoutMs: 10_000_000 } }],
  ])('refuses %s with 400 and sends nothing', async (_what, body) => {
    await setup();
    const r = await call('POST', '/domains/web1/exec', body);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('invalid_request');
    expect(sent()).toHaveLength(0);
  });

  it('refuses stdin over exec.maxInputBytes with 413 before it reaches the agent', async () => {
    await setup({ exec: { maxInputBytes: 10 } });
    const r = await call('POST', '/domains/web1/exec', { path: '/bin/cat', input: { text: 'x'.repeat(11) } });
    expect(r.status).toBe(413);
    expect(r.body.code).toBe('payload_too_large');
    expect(sent()).toHaveLength(0);
  });

  it('refuses a guest-exec command over 192 KiB of JSON (default stdin cap 128 KiB) with 413', async () => {
    await setup();
    const over = await call('POST', '/domains/web1/exec', {
      path: '/bin/cat',
      input: { base64: Buffer.alloc(128 * 1024 + 1).toString('base64') },
    });
    expect(over.status).toBe(413);
    expect(over.body.detail).toMatch(/exec.maxInputBytes/);
    const atCap = await call('POST', '/domains/web1/exec', {
      path: '/bin/cat',
      input: { base64: Buffer.alloc(128 * 1024).toString('base64') },
      args: ['x'.repeat(30_000)],
    });
    expect(atCap.status).toBe(413);
    expect(atCap.body.detail).toMatch(/qemu-ga 7.2/);
    expect(sent()).toHaveLength(0);
    expect(
      (await call('POST', '/domains/web1/exec', { path: '/bin/cat', input: { base64: Buffer.alloc(128 * 1024).toString('base64') } }))
        .status,
    ).toBe(201);
  });

  it('answers 501 when the agent does not offer guest-exec', async () => {
    await setup();
    const base = agent.handler;
    fake!.agentHandler = (dom, cmd, t) => {
      const reply = base(dom, cmd, t);
      if (cmd.execute !== 'guest-info') return reply;
      const r = reply as { return: { supported_commands: { name: string; enabled: boolean }[] } };
      r.return.supported_commands = r.return.supported_commands.map((c) => (c.name === 'guest-exec' ? { ...c, enabled: false } : c));
      return r;
    };
    const r = await call('POST', '/domains/web1/exec', { path: '/bin/true' });
    expect(r.status).toBe(501);
    expect(r.body.code).toBe('command_not_supported');
    expect(sent()).toHaveLength(0);
  });
});

describe('GET /domains/{domain}/exec/{pid}', () => {
  it('answers the status; after the agent reaped the process, the cached result without asking the agent again', async () => {
    await setup();
    agent.onExec = () => ({ runningPolls: 1, signal: 9 });
    await call('POST', '/domains/web1/exec', { path: '/bin/sleep', args: ['1'] });
    const running = await call('GET', '/domains/web1/exec/1000');
    expect(running.status).toBe(200);
    expect(running.body).toMatchObject({ pid: 1000, exited: false });
    const done = await call('GET', '/domains/web1/exec/1000');
    expect(done.body).toMatchObject({ pid: 1000, exited: true, exitCode: null, signal: 9, stdout: null, stderr: null });
    // The agent has forgotten it now.
    expect(agent.processes.has(1000)).toBe(false);
    const again = await call('GET', '/domains/web1/exec/1000');
    expect(again.status).toBe(200);
    expect(again.body).toEqual(done.body);
    expect(sent().map((e) => e.execute)).toEqual(['guest-exec', 'guest-exec-status', 'guest-exec-status']);
  });

  it('keeps results per domain: the same pid in another domain is another process', async () => {
    await setup();
    agent.onExec = () => ({ runningPolls: 0, exitcode: 0 });
    await call('POST', '/domains/web1/exec', { path: '/bin/true' });
    expect((await call('GET', '/domains/web1/exec/1000')).body.exited).toBe(true);
    const other = await call('GET', '/domains/web2/exec/1000');
    expect(other.status).toBe(404);
    expect(other.body.code).toBe('process_not_found');
  });

  it('waits with ?waitMs= until the process exits', async () => {
    await setup();
    agent.onExec = () => ({ runningPolls: 3, exitcode: 0, out: Buffer.from('done') });
    await call('POST', '/domains/web1/exec', { path: '/bin/x' });
    const r = await call('GET', '/domains/web1/exec/1000?waitMs=10000');
    expect(r.body).toMatchObject({ exited: true, exitCode: 0, stdout: { encoding: 'text', data: 'done' } });
  });

  it.each(FIXTURE_VERSIONS)(
    "answers 404 process_not_found for a pid the agent does not know (qemu-ga %s's wording, recorded)",
    async (version) => {
      await setup({}, version);
      const r = await call('GET', '/domains/web1/exec/4242');
      expect(r.body.agentDesc).toBe(fixtureError(version, 'host.guest-exec-status.unknown-pid').desc);
      expect(r.status).toBe(404);
      expect(r.body).toMatchObject({ code: 'process_not_found', command: 'guest-exec-status', domain: 'web1' });
    },
  );

  it('answers 502 agent_reply_too_large when libvirt cannot carry the reply, and the same again (the agent reaped it)', async () => {
    await setup();
    await call('POST', '/domains/web1/exec', { path: '/bin/big' });
    const base = agent.handler;
    fake!.agentHandler = (dom, cmd, t) =>
      cmd.execute === 'guest-exec-status' ? { libvirtError: { code: 39, message: 'Unable to encode message payload' } } : base(dom, cmd, t);
    const r = await call('GET', '/domains/web1/exec/1000');
    expect(r.status).toBe(502);
    expect(r.body).toMatchObject({ code: 'agent_reply_too_large', command: 'guest-exec-status' });
    expect(r.body.detail).toMatch(/3 MiB/);
    const again = await call('GET', '/domains/web1/exec/1000');
    expect(again.body.code).toBe('agent_reply_too_large');
    expect(sent().filter((e) => e.execute === 'guest-exec-status')).toHaveLength(1);
  });

  it('refuses a pid that is not a number with 400', async () => {
    await setup();
    expect((await call('GET', '/domains/web1/exec/abc')).status).toBe(400);
    expect((await call('GET', '/domains/web1/exec/-1')).status).toBe(400);
  });

  it("forgets a domain's kept results when the domain changes state (its pids start afresh)", async () => {
    await setup();
    agent.onExec = () => ({ runningPolls: 0, exitcode: 0 });
    await call('POST', '/domains/web1/exec', { path: '/bin/true' });
    await call('POST', '/domains/web2/exec', { path: '/bin/true' });
    expect((await call('GET', '/domains/web1/exec/1000')).status).toBe(200);
    expect((await call('GET', '/domains/web2/exec/1001')).status).toBe(200);
    // Event 5: VIR_DOMAIN_EVENT_STOPPED.
    fake!.emitLifecycle('web1', 5);
    await waitFor(async () => (await call('GET', '/domains/web1/exec/1000')).status === 404, 5000, 'web1 result forgotten');
    expect((await call('GET', '/domains/web2/exec/1001')).status).toBe(200);
  });

  it('forgets a cached result when a new process gets the same pid', async () => {
    await setup();
    agent.onExec = () => ({ runningPolls: 0, exitcode: 1 });
    await call('POST', '/domains/web1/exec', { path: '/bin/false' });
    expect((await call('GET', '/domains/web1/exec/1000')).body.exitCode).toBe(1);
    agent.nextPid = 1000;
    agent.onExec = () => ({ runningPolls: 0, exitcode: 0 });
    await call('POST', '/domains/web1/exec', { path: '/bin/true' });
    expect((await call('GET', '/domains/web1/exec/1000')).body.exitCode).toBe(0);
  });
});

describe('PerDomainCache', () => {
  it('is bounded by count (oldest out first) and by age', () => {
    let now = 0;
    const cache = new PerDomainCache<string>({ maxEntries: 2, ttlMs: 100 }, () => now);
    cache.set('a', 1, 'one');
    cache.set('a', 2, 'two');
    cache.set('b', 1, 'three');
    expect(cache.size).toBe(2);
    expect(cache.get('a', 1)).toBeUndefined();
    expect(cache.get('a', 2)).toBe('two');
    expect(cache.get('b', 1)).toBe('three');
    now = 100;
    expect(cache.get('a', 2)).toBeUndefined();
    cache.set('c', 1, 'four');
    expect(cache.size).toBe(1);
  });

  it('forgets one domain at a time, and keeps nothing when sized 0', () => {
    const cache = new PerDomainCache<string>({ maxEntries: 10, ttlMs: 1000 });
    cache.set('a', 1, 'x');
    cache.set('ab', 1, 'y');
    cache.forgetDomain('a');
    expect(cache.get('a', 1)).toBeUndefined();
    expect(cache.get('ab', 1)).toBe('y');
    const none = new PerDomainCache<string>({ maxEntries: 0, ttlMs: 1000 });
    none.set('a', 1, 'x');
    expect(none.get('a', 1)).toBeUndefined();
  });
});
