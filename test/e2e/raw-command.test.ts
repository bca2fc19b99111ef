// The raw agent command endpoint on the real guests: off by default, then enabled in a second gateway:
// what it passes through, what it refuses, and capability gating against qemu-ga 7.2.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { jsonCall } from './support/guest-control.js';
import { assertProvisioned, guest } from './support/guests.js';

let off: GatewayProcess;
let on: GatewayProcess;
const g1 = guest((g) => g.name === 'guest1', 'guest1');
const path = `/domains/${g1.name}/agent/commands`;

beforeAll(async () => {
  assertProvisioned();
  [off, on] = await Promise.all([startGateway(), startGateway({ rawCommands: { enabled: true } })]);
});
afterAll(async () => {
  await Promise.all([off?.stop(), on?.stop()]);
});

describe('raw agent commands', () => {
  it('answers 403 command_forbidden while turned off', async () => {
    const r = await jsonCall(off.url, 'POST', path, { execute: 'guest-ping' });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: 'command_forbidden' });
    expect(r.body.detail).toContain('rawCommands.enabled');
  });

  it("passes a command through and answers the agent's return", async () => {
    const r = await jsonCall(on.url, 'POST', path, { execute: 'guest-get-host-name' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      domain: { host: 'local', name: g1.name, uuid: g1.uuid },
      execute: 'guest-get-host-name',
      return: { 'host-name': g1.name },
    });
    const users = await jsonCall(on.url, 'POST', path, { execute: 'guest-get-osinfo', arguments: {} });
    expect(users.body.return).toMatchObject({ id: 'qga-test' });
  });

  it('answers agent errors as 502 with the description', async () => {
    const r = await jsonCall(on.url, 'POST', path, { execute: 'guest-file-open', arguments: { path: '/no/such/file', mode: 'r' } });
    expect(r.status).toBe(502);
    expect(r.body).toMatchObject({ code: 'agent_error', command: 'guest-file-open' });
    expect(r.body.agentDesc).toMatch(/No such file or directory/);
  });

  it('answers 501 for a command qemu-ga 7.2 lacks', async () => {
    const r = await jsonCall(on.url, 'POST', path, { execute: 'guest-get-load' });
    expect(r.status).toBe(501);
    expect(r.body).toMatchObject({ code: 'command_not_supported', agentVersion: expect.stringMatching(/^7\.2/) });
  });

  it('refuses what could break the agent channel or hang the guest', async () => {
    for (const body of [
      { execute: 'guest-sync-delimited', arguments: { id: 1 } },
      { execute: 'guest-exec-status', arguments: { pid: 1 } },
      { execute: 'guest-file-read', arguments: { handle: 1, count: 4 * 1024 * 1024 } },
      { execute: 'guest-fsfreeze-freeze' },
      { execute: 'guest-suspend-ram' },
      { execute: 'guest-shutdown' },
    ]) {
      const r = await jsonCall(on.url, 'POST', path, body);
      expect(r.status, body.execute).toBe(403);
      expect(r.body.code).toBe('command_forbidden');
    }
    // The agent is fine afterwards.
    expect((await jsonCall(on.url, 'POST', path, { execute: 'guest-ping' })).status).toBe(200);
  });
});
