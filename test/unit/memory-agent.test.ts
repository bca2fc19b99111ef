// Routes with the agent answered in memory (test/support/memory-agent-transport.ts): no libvirt, no socket, the same
// scripted agents as the fake libvirtd's. What these check the wire-level tests check too (http-agent, exec, files,
// power): here the route and the agent service alone, there also libvirt's part.
import { describe, expect, it } from 'vitest';
import { defaultAgentHandler, type AgentHandler } from '../support/fake-libvirtd.js';
import { FakeGuestFiles } from '../support/fake-guest-files.js';
import { GuestControlAgent } from '../support/guest-control-agent.js';
import { buildWithMemoryAgent } from '../support/harness.js';
import { operationsAgent } from '../support/operations-agent.js';

/** Answers every command but guest-info (left to the default agent) with the given reply. */
const answerAll =
  (reply: unknown): AgentHandler =>
  (dom, cmd, t) =>
    cmd.execute === 'guest-info' ? defaultAgentHandler(dom, cmd, t) : (reply as never);

describe('the in-memory agent transport', () => {
  it('serves the domains without libvirt: running, on the host "local", answered by the default agent', async () => {
    const { call, sent, gw } = await buildWithMemoryAgent({ domains: ['web1', 'web2'] });
    expect(gw.gateway.hosts.list).toHaveLength(0);
    const list = await call('GET', '/domains');
    expect(list.status).toBe(200);
    expect(list.body.domains.map((d: { name: string; host: string; state: string }) => [d.name, d.host, d.state])).toEqual([
      ['web1', 'local', 'running'],
      ['web2', 'local', 'running'],
    ]);
    const ping = await call('GET', '/domains/web1/agent/ping');
    expect(ping.status).toBe(200);
    expect(ping.body).toMatchObject({ domain: { name: 'web1' }, ok: true });
    expect(sent().map((e) => [e.domain, e.execute])).toEqual([['web1', 'guest-ping']]);
  });

  it('normalises the recorded qemu-ga 10.0.13 reply of guest-network-get-interfaces', async () => {
    const { call, sent } = await buildWithMemoryAgent({ domains: ['web1'] });
    const { status, body } = await call('GET', '/domains/web1/network-interfaces');
    expect(status).toBe(200);
    expect(body.interfaces[1]).toEqual({
      name: 'ens2',
      mac: '52:54:00:a0:00:06',
      addresses: [
        { family: 'ipv4', address: '10.0.2.15', prefix: 24 },
        { family: 'ipv6', address: 'fec0::5054:ff:fea0:6', prefix: 64 },
        { family: 'ipv6', address: 'fe80::5054:ff:fea0:6', prefix: 64 },
      ],
      statistics: { rxBytes: 1290, rxPackets: 3, rxErrors: 0, rxDropped: 0, txBytes: 1554, txPackets: 12, txErrors: 0, txDropped: 0 },
    });
    expect(sent().map((e) => e.execute)).toEqual(['guest-network-get-interfaces']);
  });

  it.each([
    ['the agent refuses', { error: { class: 'GenericError', desc: 'Operation not supported' } }, 502, 'agent_error'],
    ['the reply has the wrong shape', { return: { not: 'an array' } }, 502, 'agent_reply_invalid'],
    [
      'libvirt says the agent is not connected',
      { libvirtError: { code: 86, message: 'Guest agent is not responding: QEMU guest agent is not connected' } },
      503,
      'agent_not_connected',
    ],
  ] as const)('maps the case where %s', async (_what, reply, status, code) => {
    const { call } = await buildWithMemoryAgent({ domains: ['web1'], agent: answerAll(reply) });
    const r = await call('GET', '/domains/web1/network-interfaces');
    expect(r.status).toBe(status);
    expect(r.body.code).toBe(code);
    expect(r.headers['content-type']).toMatch(/problem\+json/);
    if (code === 'agent_error')
      expect(r.body).toMatchObject({
        agentClass: 'GenericError',
        agentDesc: 'Operation not supported',
        command: 'guest-network-get-interfaces',
      });
  });

  it('answers 504 at the deadline when the agent never replies, and tells the agent a slightly longer timeout', async () => {
    const { call, sent } = await buildWithMemoryAgent({ domains: ['web1'], agent: answerAll({ hang: true }) });
    const r = await call('GET', '/domains/web1/network-interfaces?timeoutMs=300');
    expect(r.status).toBe(504);
    expect(r.body.code).toBe('deadline_exceeded');
    expect(r.body.detail).toMatch(/300 ms/);
    expect(sent()[0]!.timeoutSeconds).toBe(2);
  });

  it('runs a program and reads its decoded result (GuestControlAgent)', async () => {
    const agent = new GuestControlAgent();
    agent.onExec = () => ({ runningPolls: 2, exitcode: 3, out: Buffer.from('out\n'), err: Buffer.from([0xff, 0x00, 0x80]) });
    const { call, sent } = await buildWithMemoryAgent({ domains: ['web1'], agent: agent.handler });
    const r = await call('POST', '/domains/web1/exec', { path: '/bin/sh', args: ['-c', 'x'], wait: { timeoutMs: 10_000 } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ domain: { host: 'local', name: 'web1' }, pid: 1000, exited: true, exitCode: 3, signal: null });
    expect(r.body.stdout).toEqual({ encoding: 'text', data: 'out\n', bytes: 4, truncated: false });
    expect(r.body.stderr).toEqual({ encoding: 'base64', data: '/wCA', bytes: 3, truncated: false });
    expect(sent().map((e) => e.execute)).toEqual(['guest-exec', 'guest-exec-status', 'guest-exec-status', 'guest-exec-status']);
  });

  it('streams a guest file in chunks and closes its handle (FakeGuestFiles)', async () => {
    const guest = new FakeGuestFiles();
    const content = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7) & 0xff));
    guest.files.set('/srv/data.bin', content);
    const { gw } = await buildWithMemoryAgent({ domains: ['web1'], agent: guest.handler, config: { files: { chunkBytes: 65_536 } } });
    const res = await gw.app.inject({ method: 'GET', url: '/domains/web1/files/srv/data.bin' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(content.length));
    expect(res.rawPayload.equals(content)).toBe(true);
    expect(guest.counts.get('guest-file-read')).toBe(4);
    expect(guest.leaked).toEqual([]);
  });

  it('shuts a domain down with guest-shutdown and reads no reply, as over an agent socket', async () => {
    const agent = operationsAgent();
    const { call, sent } = await buildWithMemoryAgent({ domains: ['vm1'], agent: agent.handler });
    const r = await call('POST', '/domains/vm1/power', { action: 'shutdown' });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ domain: { host: 'local', name: 'vm1' }, action: 'shutdown', command: 'guest-shutdown', accepted: true });
    expect(sent()).toMatchObject([{ execute: 'guest-shutdown', arguments: { mode: 'powerdown' } }]);
  });

  it('sends guest-sync-delimited, its default, through the transport (POST /domains/{domain}/agent/sync)', async () => {
    const { call, sent } = await buildWithMemoryAgent({ domains: ['web1'] });
    const r = await call('POST', '/domains/web1/agent/sync', {});
    expect(r.status, r.raw).toBe(200);
    expect(r.body).toMatchObject({ command: 'guest-sync-delimited', inStep: true, discardedBytes: 0, staleReplies: 0 });
    expect(sent()).toMatchObject([{ execute: 'guest-sync-delimited', arguments: { id: r.body.id } }]);
  });
});
