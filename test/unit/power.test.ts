// POST /domains/{domain}/power against the fake libvirtd: libvirt's agent-aware APIs for shutdown, reboot and
// suspend, halt through guest-shutdown, capability gating, error mapping and the per-domain queue.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { command, noArgs } from '../../src/agent/commands/define.js';
import { RemoteProc } from '../../src/libvirt/procedures.js';
import { DomainState, waitFor, type FakeLibvirtd } from '../support/fake-libvirtd.js';
import { operationsAgent, type OperationsAgent } from '../support/operations-agent.js';
import { build, request } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;
let agent: OperationsAgent;

async function setup() {
  agent = operationsAgent();
  ({ fake, gw } = await build({ domains: ['vm1'], agent: agent.handler }));
}

const power = (action: unknown, domain = 'vm1', query = '') => request(gw!, 'POST', `/domains/${domain}/power${query}`, { action });

const sent = () => fake!.agentLog.filter((e) => e.execute !== 'guest-info');

describe('POST /domains/{domain}/power', () => {
  it('shuts down through virDomainShutdownFlags(GUEST_AGENT) and answers 202 with where to watch', async () => {
    await setup();
    const uuid = fake!.domain('vm1').uuid;
    const r = await power('shutdown');
    expect(r.status).toBe(202);
    expect(r.headers.location).toBe(`/domains/${uuid}`);
    expect(r.body).toEqual({
      domain: { host: 'local', name: 'vm1', uuid },
      action: 'shutdown',
      command: 'guest-shutdown',
      accepted: true,
      monitor: `/domains/${uuid}`,
      expect: { state: 'shutoff', lifecycleEvents: ['shutdown', 'stopped'], agentState: 'disconnected' },
    });
    expect(fake!.callCount(RemoteProc.DOMAIN_SHUTDOWN_FLAGS)).toBe(1);
    expect(sent()).toMatchObject([{ execute: 'guest-shutdown', arguments: { mode: 'powerdown' } }]);
  });

  it('reboots through virDomainReboot(GUEST_AGENT)', async () => {
    await setup();
    const r = await power('reboot');
    expect(r.status).toBe(202);
    expect(r.body.expect.state).toBe('running');
    expect(fake!.callCount(RemoteProc.DOMAIN_REBOOT)).toBe(1);
    expect(sent()).toMatchObject([{ execute: 'guest-shutdown', arguments: { mode: 'reboot' } }]);
  });

  it.each([
    ['suspend-ram', 'guest-suspend-ram', 'pmsuspended'],
    ['suspend-disk', 'guest-suspend-disk', 'shutoff'],
    ['suspend-hybrid', 'guest-suspend-hybrid', 'pmsuspended'],
  ] as const)('%s goes through virDomainPMSuspendForDuration (%s)', async (action, execute, state) => {
    await setup();
    const r = await power(action);
    expect(r.status).toBe(202);
    expect(r.body.command).toBe(execute);
    expect(r.body.expect.state).toBe(state);
    expect(fake!.callCount(RemoteProc.DOMAIN_PM_SUSPEND_FOR_DURATION)).toBe(1);
    expect(sent().map((e) => e.execute)).toEqual([execute]);
  });

  it('answers 501 suspend_not_supported when the guest lacks the suspend mode', async () => {
    await setup();
    agent.overrides.set('guest-suspend-hybrid', {
      error: { class: 'GenericError', desc: 'the requested suspend mode is not supported by the guest' },
    });
    const r = await power('suspend-hybrid');
    expect(r.status).toBe(501);
    expect(r.body).toMatchObject({
      code: 'suspend_not_supported',
      command: 'guest-suspend-hybrid',
      agentDesc: 'the requested suspend mode is not supported by the guest',
    });
  });

  it('halts with guest-shutdown {"mode":"halt"} and takes "agent disappeared" as success', async () => {
    await setup();
    agent.overrides.set('guest-shutdown', {
      libvirtError: { code: 86, message: 'Guest agent is not responding: Guest agent disappeared while executing command' },
    });
    const r = await power('halt');
    expect(r.status).toBe(202);
    expect(r.body.command).toBe('guest-shutdown');
    expect(sent()).toMatchObject([{ execute: 'guest-shutdown', arguments: { mode: 'halt' } }]);
    expect(fake!.callCount(RemoteProc.DOMAIN_SHUTDOWN_FLAGS)).toBe(0);
  });

  it('halt: a deadline after the command was sent means sent, not failed', async () => {
    await setup();
    const r = await power('halt', 'vm1', '?timeoutMs=200');
    expect(r.status).toBe(202);
    expect(sent().map((e) => e.execute)).toEqual(['guest-shutdown']);
  });

  it('halt: a real agent error is passed on', async () => {
    await setup();
    agent.overrides.set('guest-shutdown', { error: { class: 'GenericError', desc: 'child process has failed to shutdown' } });
    const r = await power('halt');
    expect(r.status).toBe(502);
    expect(r.body).toMatchObject({ code: 'agent_error', agentDesc: 'child process has failed to shutdown' });
  });

  it('shutdown: a guest slow to go down (deadline after libvirt has the call) is still accepted', async () => {
    await setup();
    const hold = fake!.holdReplies(RemoteProc.DOMAIN_SHUTDOWN_FLAGS);
    const r = await power('shutdown', 'vm1', '?timeoutMs=200');
    expect(r.status).toBe(202);
    expect(sent().map((e) => e.execute)).toEqual(['guest-shutdown']);
    hold.release();
  });

  it('refuses (501) an action whose command the agent does not offer, without sending anything', async () => {
    await setup();
    agent.missing.add('guest-suspend-ram');
    const r = await power('suspend-ram');
    expect(r.status).toBe(501);
    expect(r.body).toMatchObject({ code: 'command_not_supported', command: 'guest-suspend-ram' });
    expect(fake!.callCount(RemoteProc.DOMAIN_PM_SUSPEND_FOR_DURATION)).toBe(0);
  });

  it.each([['explode'], [undefined], [42]])('answers 400 for the action %s', async (action) => {
    await setup();
    const r = await power(action);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('invalid_request');
    expect(fake!.agentLog).toEqual([]);
  });

  it('maps a stopped domain (409) and a disconnected agent (503)', async () => {
    await setup();
    await power('reboot'); // learns the capabilities first
    fake!.setAgent('vm1', 'disconnected');
    const gone = await power('shutdown');
    expect(gone.status).toBe(503);
    expect(gone.body.code).toBe('agent_not_connected');
    fake!.setAgent('vm1', 'connected');
    fake!.setState('vm1', DomainState.SHUTOFF);
    const off = await power('shutdown');
    expect(off.status).toBe(409);
    expect(off.body.code).toBe('domain_not_running');
  });

  it('waits in the domain queue behind a running agent command', async () => {
    await setup();
    const releases: (() => void)[] = [];
    const base = agent.handler;
    fake!.agentHandler = (dom, cmd, t) =>
      cmd.execute === 'guest-get-host-name' ? new Promise((r) => releases.push(() => r(base(dom, cmd, t) as never))) : base(dom, cmd, t);
    // A command held inside the agent: the power call must not reach libvirt before it finishes.
    const dom = await gw!.gateway.domains.resolve('vm1');
    const running = gw!.gateway.agent.execute(dom, command('guest-get-host-name', 'quick', noArgs, z.looseObject({})), undefined);
    await waitFor(() => releases.length === 1);
    const pending = power('shutdown');
    await waitFor(() => gw!.gateway.agent.queueDepth(dom) === 2, 5000, 'the power call queued');
    expect(fake!.callCount(RemoteProc.DOMAIN_SHUTDOWN_FLAGS)).toBe(0);
    releases[0]!();
    await running;
    expect((await pending).status).toBe(202);
    expect(fake!.callCount(RemoteProc.DOMAIN_SHUTDOWN_FLAGS)).toBe(1);
  });
});
