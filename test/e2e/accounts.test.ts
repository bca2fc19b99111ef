// Guest accounts on the real guests: SSH authorized keys of root for real (add, list, remove, reset), and
// the password, which this guest cannot set (no chpasswd in its busybox): its error mapping, and that the
// password reaches no log line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { jsonCall } from './support/guest-control.js';
import { agentCommand, assertProvisioned, guest } from './support/guests.js';

const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILs6z9QV1ve7cx4wYGtWe06S28D4feUoGDXKiZh6/yKq e2e-accounts@qga-gateway';
const ECDSA =
  'ecdsa-sha2-nistp256 ' +
  'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAB12hz4B0+j6AzfyE' +
  'Yqk3L09I/pr4kYgX6B9RTxz/3WZRZ7Q/raGww7BvQ+G31npY0APZbHSpL0BjZquV5zeE4= e2e-accounts-2';

let gw: GatewayProcess;
const g2 = guest((g) => g.name === 'guest2', 'guest2');
const call = (method: string, path: string, body?: unknown) => jsonCall(gw.url, method, path, body);
const keysPath = `/domains/${g2.name}/users/root/ssh-keys`;

/** Removes what the tests created: root had no ~/.ssh in the test image. */
function removeRootSsh(): void {
  agentCommand(g2.name, { execute: 'guest-exec', arguments: { path: '/bin/rm', arg: ['-rf', '/root/.ssh'] } });
}

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway();
});
afterAll(async () => {
  removeRootSsh();
  await gw?.stop();
});

describe('SSH authorized keys on a real guest', () => {
  it('lists, adds, removes and resets root keys', async () => {
    removeRootSsh();
    const empty = await call('GET', keysPath);
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual({ domain: { host: 'local', name: g2.name, uuid: g2.uuid }, user: 'root', keys: [] });

    const added = await call('POST', keysPath, { keys: [ED25519, ECDSA] });
    expect(added.status).toBe(200);
    // qemu-ga keeps no order of its own.
    expect(added.body.keys).toHaveLength(2);
    expect(added.body.keys).toEqual(
      expect.arrayContaining([
        { line: ED25519, type: 'ssh-ed25519', comment: 'e2e-accounts@qga-gateway' },
        { line: ECDSA, type: 'ecdsa-sha2-nistp256', comment: 'e2e-accounts-2' },
      ]),
    );
    // Adding a key already there does not duplicate it.
    expect((await call('POST', keysPath, { keys: [ED25519] })).body.keys).toHaveLength(2);

    const removed = await call('DELETE', keysPath, { keys: [ED25519] });
    expect(removed.status).toBe(200);
    expect(removed.body.keys.map((k: { line: string }) => k.line)).toEqual([ECDSA]);
    expect((await call('GET', keysPath)).body.keys.map((k: { line: string }) => k.line)).toEqual([ECDSA]);

    const reset = await call('POST', keysPath, { keys: [ED25519], reset: true });
    expect(reset.body.keys.map((k: { line: string }) => k.line)).toEqual([ED25519]);
    const cleared = await call('POST', keysPath, { keys: [], reset: true });
    expect(cleared.body.keys).toEqual([]);
  });

  it('refuses malformed keys with 400 before the agent', async () => {
    for (const key of [
      'ssh-ed25519 not-base64!',
      `${ED25519}\nssh-ed25519 AAAA injected`,
      'ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAILs6z9QV1ve7cx4wYGtWe06S28D4feUoGDXKiZh6/yKq',
    ]) {
      const r = await call('POST', keysPath, { keys: [key] });
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('invalid_request');
    }
  });

  it('answers 404 user_not_found for a user the guest does not have', async () => {
    const r = await call('GET', `/domains/${g2.name}/users/no-such-user/ssh-keys`);
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ code: 'user_not_found', agentDesc: expect.stringContaining("failed to lookup user 'no-such-user'") });
    expect((await call('POST', `/domains/${g2.name}/users/no-such-user/ssh-keys`, { keys: [ED25519] })).body.code).toBe('user_not_found');
  });
});

describe('password on a real guest', () => {
  it('answers 501 guest_program_missing (this guest has no chpasswd) and logs no password', async () => {
    const secret = 'e2e-Pa55word-never-logged';
    const r = await call('PUT', `/domains/${g2.name}/users/root/password`, { password: secret });
    expect(r.status).toBe(501);
    expect(r.body).toMatchObject({
      code: 'guest_program_missing',
      command: 'guest-set-user-password',
      agentDesc: "cannot find 'passwd' program in PATH",
    });
    expect(JSON.stringify(r.body)).not.toContain(secret);
    const crypted = await call('PUT', `/domains/${g2.name}/users/root/password`, {
      password: '$6$saltsalt$abcdefghijklmnop',
      crypted: true,
    });
    expect(crypted.status).toBe(501);
    // The request log line is written after the answer: wait for it, then look at every line.
    const deadline = Date.now() + 10_000;
    while (!gw.logs.some((l) => l.includes('/users/root/password') && l.includes('"statusCode":501')) && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 50));
    expect(gw.logs.some((l) => l.includes('/users/root/password'))).toBe(true);
    expect(gw.logs.join('\n')).not.toContain(secret);
    expect(gw.logs.join('\n')).not.toContain(Buffer.from(secret).toString('base64'));
  });
});
