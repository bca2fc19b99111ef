// POST /domains/{domain}/agent/commands against the fake libvirtd: off by default, what it always refuses,
// capability gating, agent errors, and that what it sends is exactly the command asked for.
import { describe, expect, it } from 'vitest';
import type { FakeLibvirtd } from '../support/fake-libvirtd.js';
import { GuestControlAgent } from '../support/guest-control-agent.js';
import { build, request } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';
import { FIXTURE_VERSIONS, fixtureError } from '../support/qga-fixtures.js';

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;
let agent: GuestControlAgent;

async function setup(rawCommands: { enabled?: boolean; deny?: string[] } = { enabled: true }) {
  agent = new GuestControlAgent();
  ({ fake, gw } = await build({ domains: ['web1'], agent: agent.handler, config: { rawCommands } }));
}

const sent = () => fake!.agentLog.filter((e) => e.execute !== 'guest-info');

const post = (body: unknown, url = '/domains/web1/agent/commands') => request(gw!, 'POST', url, body);

describe('POST /domains/{domain}/agent/commands', () => {
  it('is off by default: 403 command_forbidden naming the config key, nothing sent', async () => {
    await setup({});
    const r = await post({ execute: 'guest-ping' });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('command_forbidden');
    expect(r.body.detail).toContain('rawCommands.enabled');
    expect(fake!.agentLog).toHaveLength(0);
  });

  it("sends the command with its arguments and answers the agent's return", async () => {
    await setup();
    agent.replies.set('guest-get-users', { return: [{ user: 'root', 'login-time': 1.5 }] });
    const r = await post({ execute: 'guest-get-users' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ domain: { name: 'web1' }, execute: 'guest-get-users', return: [{ user: 'root', 'login-time': 1.5 }] });
    expect(sent()).toEqual([expect.objectContaining({ execute: 'guest-get-users', arguments: undefined })]);
    const h = await post({ execute: 'guest-get-host-name', arguments: {} });
    expect(h.body.return).toEqual({ 'host-name': 'web1' });
    expect(sent()[1]!.arguments).toEqual({});
  });

  it.each([
    ['guest-sync', { id: 1 }, /transport/],
    ['guest-sync-delimited', { id: 1 }, /transport/],
    ['guest-exec-status', { pid: 1 }, /exec\/\{pid\}/],
    ['guest-fsfreeze-freeze', undefined, /freeze resource/],
    ['guest-fsfreeze-freeze-list', { mountpoints: ['/'] }, /freeze resource/],
    ['guest-file-read', { handle: 1, count: 2 * 1024 * 1024 + 1 }, /at most 2097152/],
    ['guest-file-read', { handle: 1, count: '100' }, /must be a number/],
    ['guest-suspend-ram', undefined, /no reply on success/],
  ])('refuses %s (%j) with 403 before it reaches the agent', async (execute, args, detail) => {
    await setup();
    const r = await post(args === undefined ? { execute } : { execute, arguments: args });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('command_forbidden');
    expect(r.body.detail).toMatch(detail);
    expect(sent()).toHaveLength(0);
  });

  it('lets a guest-file-read of up to 2 MiB and one without count through', async () => {
    await setup();
    agent.replies.set('guest-file-read', { return: { count: 0, 'buf-b64': '', eof: true } });
    expect((await post({ execute: 'guest-file-read', arguments: { handle: 1, count: 2 * 1024 * 1024 } })).status).toBe(200);
    expect((await post({ execute: 'guest-file-read', arguments: { handle: 1 } })).status).toBe(200);
  });

  it('refuses what rawCommands.deny lists', async () => {
    await setup({ enabled: true, deny: ['guest-get-users'] });
    const r = await post({ execute: 'guest-get-users' });
    expect(r.status).toBe(403);
    expect(r.body.detail).toContain('rawCommands.deny');
  });

  it('answers 501 for a command the agent does not offer, without sending it', async () => {
    await setup();
    const r = await post({ execute: 'guest-get-load' });
    expect(r.status).toBe(501);
    expect(r.body.code).toBe('command_not_supported');
    expect(sent()).toHaveLength(0);
  });

  it('maps agent errors to 502 with the class and description', async () => {
    await setup();
    agent.replies.set('guest-get-users', { error: { class: 'GenericError', desc: 'failed to open file /var/run/utmp' } });
    const r = await post({ execute: 'guest-get-users' });
    expect(r.status).toBe(502);
    expect(r.body).toMatchObject({
      code: 'agent_error',
      agentClass: 'GenericError',
      agentDesc: 'failed to open file /var/run/utmp',
      command: 'guest-get-users',
    });
  });

  it.each(
    FIXTURE_VERSIONS.flatMap((v) =>
      [
        'host.missing-argument',
        'host.unexpected-argument',
        'host.wrong-argument-type',
        ...(v === '7.2' ? ['host.guest-exec.capture-mode'] : []),
      ].map((name) => [v, name] as const),
    ),
  )("answers 400 for arguments qemu-ga %s's schema refuses (%s, recorded)", async (version, name) => {
    await setup();
    // The recorded refusal (its command's own arguments aside: what decides is the agent's words).
    agent.replies.set('guest-get-users', { error: fixtureError(version, name) });
    const r = await post({ execute: 'guest-get-users', arguments: { bogus: 1 } });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'invalid_request', agentDesc: fixtureError(version, name).desc, command: 'guest-get-users' });
  });

  it.each([
    ['no execute', {}],
    ['a name that is no command', { execute: 'guest ping; rm' }],
    ['arguments that are not an object', { execute: 'guest-ping', arguments: [1] }],
    ['unknown members', { execute: 'guest-ping', id: 5 }],
  ])('refuses %s with 400', async (_what, body) => {
    await setup();
    const r = await post(body);
    expect(r.status).toBe(400);
    expect(sent()).toHaveLength(0);
  });

  it('refuses a command larger than qemu-ga 7.2 reads reliably (192 KiB of JSON) with 413', async () => {
    await setup();
    const r = await post({ execute: 'guest-file-write', arguments: { handle: 1, 'buf-b64': 'A'.repeat(200 * 1024) } });
    expect(r.status).toBe(413);
    expect(r.body.code).toBe('payload_too_large');
    expect(r.body.detail).toMatch(/qemu-ga 7.2/);
    expect(sent()).toHaveLength(0);
  });

  it('answers 404 for an unknown domain when enabled', async () => {
    await setup();
    expect((await post({ execute: 'guest-ping' }, '/domains/nope/agent/commands')).status).toBe(404);
  });
});
