// Guest accounts against the fake libvirtd: the password (never logged, base64 to the agent), SSH authorized
// keys (validation before the agent, add/reset/remove, a user without a file, an unknown user).
import { describe, expect, it } from 'vitest';
import { describeKeyLine, sshKeyProblem } from '../../src/agent/guest/ssh-keys.js';
import { createLogger } from '../../src/logger.js';
import type { FakeLibvirtd } from '../support/fake-libvirtd.js';
import { GuestControlAgent } from '../support/guest-control-agent.js';
import { build, request, type Method } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';

const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILs6z9QV1ve7cx4wYGtWe06S28D4feUoGDXKiZh6/yKq alice@laptop';
const RSA =
  'ssh-rsa ' +
  'AAAAB3NzaC1yc2EAAAADAQABAAAAgQCaBInMZY1XOnvjFCdaU380nhKxM+dmehGomQcEQDHWKINQBIUVZXhoNBqWRJnLSYIL/nNZow' +
  '8JxD1CUfGzbyxmwU/5f85qGXCR3uyKrLONRb0MTzkgrRIF1PTIW5g92plXtsw/tpS8Rt3wut3wVdN1ZdPn568ZcqNDo/6BF5tC/w== bob';
const ECDSA_NO_COMMENT =
  'ecdsa-sha2-nistp256 ' +
  'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAB12hz4B0+j6AzfyE' +
  'Yqk3L09I/pr4kYgX6B9RTxz/3WZRZ7Q/raGww7BvQ+G31npY0APZbHSpL0BjZquV5zeE4=';

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;
let agent: GuestControlAgent;

async function setup() {
  agent = new GuestControlAgent();
  ({ fake, gw } = await build({ domains: ['web1'], agent: agent.handler }));
}

const sent = () => fake!.agentLog.filter((e) => e.execute !== 'guest-info');

const call = (method: Method, url: string, payload?: unknown) => request(gw!, method, url, payload);

describe('PUT /domains/{domain}/users/{user}/password', () => {
  const SECRET = 'S3cret-p4ss-ÄÖ';

  it('sends the password base64-encoded, answers 204, and never logs nor echoes it', async () => {
    await setup();
    const r = await call('PUT', '/domains/web1/users/root/password', { password: SECRET });
    expect(r.status).toBe(204);
    expect(r.raw).toBe('');
    expect(sent()[0]).toMatchObject({
      execute: 'guest-set-user-password',
      arguments: { username: 'root', password: Buffer.from(SECRET).toString('base64'), crypted: false },
    });
    const logged = JSON.stringify(gw!.logs);
    expect(logged).toContain('/domains/web1/users/root/password');
    expect(logged).not.toContain(SECRET);
    expect(logged).not.toContain(Buffer.from(SECRET).toString('base64'));
  });

  it('passes a crypted hash with crypted: true', async () => {
    await setup();
    const hash = '$6$salt$abcdefghijklmnopqrstuv';
    expect((await call('PUT', '/domains/web1/users/alice/password', { password: hash, crypted: true })).status).toBe(204);
    expect(sent()[0]!.arguments).toEqual({ username: 'alice', password: Buffer.from(hash).toString('base64'), crypted: true });
  });

  it('does not echo a refused password, nor log it', async () => {
    await setup();
    const bad = 'line1\nline2-secret';
    const r = await call('PUT', '/domains/web1/users/root/password', { password: bad });
    expect(r.status).toBe(400);
    expect(r.raw).not.toContain('line2-secret');
    expect(JSON.stringify(gw!.logs)).not.toContain('line2-secret');
    expect(sent()).toHaveLength(0);
    expect((await call('PUT', '/domains/web1/users/root/password', { password: '' })).status).toBe(400);
    expect((await call('PUT', '/domains/web1/users/ro:ot/password', { password: 'x' })).status).toBe(400);
  });

  it("would be redacted by the gateway's logger even if a request body were logged", () => {
    const lines: string[] = [];
    createLogger('info', { write: (l: string) => void lines.push(l) }).info({ body: { password: SECRET, crypted: false } }, 'x');
    expect(lines.join('')).not.toContain(SECRET);
    expect(lines.join('')).toContain('[redacted]');
  });

  it('maps a guest without chpasswd to 501 guest_program_missing, and other agent errors to 502', async () => {
    await setup();
    agent.passwordReply = { error: { class: 'GenericError', desc: "cannot find 'passwd' program in PATH" } };
    const r = await call('PUT', '/domains/web1/users/root/password', { password: SECRET });
    expect(r.status).toBe(501);
    expect(r.body).toMatchObject({ code: 'guest_program_missing', command: 'guest-set-user-password' });
    expect(r.raw).not.toContain(SECRET);
    agent.passwordReply = { error: { class: 'GenericError', desc: 'child process has failed to set user password' } };
    const r2 = await call('PUT', '/domains/web1/users/root/password', { password: SECRET });
    expect(r2.status).toBe(502);
    expect(r2.body.agentDesc).toBe('child process has failed to set user password');
  });

  it('answers 404 user_not_found when chpasswd fails for a user the guest lacks (the agent never looks it up)', async () => {
    await setup();
    // qemu-ga 10.0 in a Debian 13 guest, for a user that does not exist (recorded wording).
    const desc =
      'child process has failed to set user password: chpasswd: (user nobody) pam_chauthtok() failed, error:\n' +
      'Authentication token manipulation error\n' +
      'chpasswd: (line 1, user nobody) password not changed\n';
    agent.passwordReply = { error: { class: 'GenericError', desc } };
    const r = await call('PUT', '/domains/web1/users/nobody/password', { password: SECRET });
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ code: 'user_not_found', command: 'guest-set-user-password' });
    expect(r.raw).not.toContain(SECRET);
    // The same failure for a user that exists stays the agent's error: the probe found the user.
    const r2 = await call('PUT', '/domains/web1/users/root/password', { password: SECRET });
    expect(r2.status).toBe(502);
    expect(r2.body.agentDesc).toContain('(user nobody) pam_chauthtok() failed');
  });
});

describe('/domains/{domain}/users/{user}/ssh-keys', () => {
  it('answers no keys for a user without an authorized_keys file, and 404 for an unknown user', async () => {
    await setup();
    const r = await call('GET', '/domains/web1/users/root/ssh-keys');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ domain: { name: 'web1' }, user: 'root', keys: [] });
    const u = await call('GET', '/domains/web1/users/nobody/ssh-keys');
    expect(u.status).toBe(404);
    expect(u.body.code).toBe('user_not_found');
  });

  it('adds keys (trimmed), answers the resulting list, removes them, and resets', async () => {
    await setup();
    const added = await call('POST', '/domains/web1/users/root/ssh-keys', { keys: [ED25519, `${ECDSA_NO_COMMENT} `] });
    expect(added.status).toBe(200);
    expect(added.body.keys).toEqual([
      { line: ED25519, type: 'ssh-ed25519', comment: 'alice@laptop' },
      { line: ECDSA_NO_COMMENT, type: 'ecdsa-sha2-nistp256', comment: null },
    ]);
    expect(
      sent()
        .slice(0, 2)
        .map((e) => e.execute),
    ).toEqual(['guest-ssh-add-authorized-keys', 'guest-ssh-get-authorized-keys']);
    expect(sent()[0]!.arguments).toEqual({ username: 'root', keys: [ED25519, ECDSA_NO_COMMENT] });

    const removed = await call('DELETE', '/domains/web1/users/root/ssh-keys', { keys: [ED25519] });
    expect(removed.status).toBe(200);
    expect(removed.body.keys.map((k: { line: string }) => k.line)).toEqual([ECDSA_NO_COMMENT]);

    const reset = await call('POST', '/domains/web1/users/root/ssh-keys', { keys: [RSA], reset: true });
    expect(reset.body.keys.map((k: { type: string }) => k.type)).toEqual(['ssh-rsa']);
    expect(fake!.agentLog.at(-2)!.arguments).toEqual({ username: 'root', keys: [RSA], reset: true });
    const cleared = await call('POST', '/domains/web1/users/root/ssh-keys', { keys: [], reset: true });
    expect(cleared.body.keys).toEqual([]);
  });

  it('lists lines with options with a null type', async () => {
    await setup();
    agent.keys.set('root', [`command="/bin/date" ${ED25519}`]);
    const r = await call('GET', '/domains/web1/users/root/ssh-keys');
    expect(r.body.keys).toEqual([{ line: `command="/bin/date" ${ED25519}`, type: null, comment: null }]);
  });

  it.each([
    ['an empty list without reset', { keys: [] }],
    ['a key with a newline (a second line injected)', { keys: [`${ED25519}\nssh-ed25519 AAAA evil`] }],
    ['a trailing newline', { keys: [`${ED25519}\n`] }],
    ['an unknown type', { keys: ['ssh-foo AAAAC3NzaC1lZDI1NTE5AAAAILs6z9QV1ve7cx4wYGtWe06S28D4feUoGDXKiZh6/yKq x'] }],
    ['a blob of another type', { keys: ['ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAILs6z9QV1ve7cx4wYGtWe06S28D4feUoGDXKiZh6/yKq x'] }],
    ['a blob that is not base64', { keys: ['ssh-ed25519 not*base64 x'] }],
    ['options before the key', { keys: [`from="10.0.0.1" ${ED25519}`] }],
    ['a comment line', { keys: ['# nothing'] }],
    ['a private key', { keys: ['-----BEGIN OPENSSH PRIVATE KEY-----'] }],
  ])('refuses %s with 400 and sends nothing', async (_what, body) => {
    await setup();
    const r = await call('POST', '/domains/web1/users/root/ssh-keys', body);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('invalid_request');
    expect(sent()).toHaveLength(0);
  });

  it('refuses a malformed key on DELETE too, and an empty list', async () => {
    await setup();
    expect((await call('DELETE', '/domains/web1/users/root/ssh-keys', { keys: ['nope'] })).status).toBe(400);
    expect((await call('DELETE', '/domains/web1/users/root/ssh-keys', { keys: [] })).status).toBe(400);
    expect(sent()).toHaveLength(0);
  });

  it('maps an unknown user on add and remove to 404', async () => {
    await setup();
    expect((await call('POST', '/domains/web1/users/ghost/ssh-keys', { keys: [ED25519] })).body.code).toBe('user_not_found');
    expect((await call('DELETE', '/domains/web1/users/ghost/ssh-keys', { keys: [ED25519] })).body.code).toBe('user_not_found');
  });
});

describe('ssh key lines', () => {
  it('accepts real keys of each common type and certificates by name', () => {
    for (const k of [ED25519, RSA, ECDSA_NO_COMMENT]) expect(sshKeyProblem(k)).toBeNull();
    expect(describeKeyLine(RSA)).toEqual({ line: RSA, type: 'ssh-rsa', comment: 'bob' });
  });

  it('says what is wrong', () => {
    expect(sshKeyProblem('ssh-ed25519')).toMatch(/type base64-key/);
    expect(sshKeyProblem('ssh-ed25519 AAAA')).toMatch(/not a ssh-ed25519 key|too short/);
    expect(sshKeyProblem(`${ED25519}\r`)).toMatch(/one line/);
  });
});

describe('the same rules through the raw endpoint (admin and accounts scopes)', () => {
  const raw = async (execute: string, args: object) => {
    agent = new GuestControlAgent();
    ({ fake, gw } = await build({
      domains: ['web1'],
      agent: agent.handler,
      config: { rawCommands: { enabled: true } },
    }));
    return call('POST', '/domains/web1/agent/commands', { execute, arguments: args });
  };
  const b64 = (text: string) => Buffer.from(text).toString('base64');

  it.each([
    ['a key with a terminal escape', 'guest-ssh-add-authorized-keys', { username: 'root', keys: [`${ED25519}\u001b[2J`] }, 'keys.0'],
    ['a key that is two lines', 'guest-ssh-add-authorized-keys', { username: 'root', keys: [`${ED25519}\n${RSA}`] }, 'keys.0'],
    ['a key with options', 'guest-ssh-add-authorized-keys', { username: 'root', keys: [`command="sh" ${ED25519}`] }, 'keys.0'],
    ['a removal of a bad line', 'guest-ssh-remove-authorized-keys', { username: 'root', keys: ['not a key'] }, 'keys.0'],
    ['a user name with a colon', 'guest-ssh-get-authorized-keys', { username: 'root:x' }, 'username'],
    ['a user name with a slash', 'guest-ssh-add-authorized-keys', { username: '../root', keys: [ED25519] }, 'username'],
    [
      'a password that starts a second chpasswd line',
      'guest-set-user-password',
      { username: 'alice', password: b64('x\nroot:owned'), crypted: false },
      'password',
    ],
    [
      'a password that is not base64',
      'guest-set-user-password',
      { username: 'alice', password: 'not base64!', crypted: false },
      'password',
    ],
  ])('refuses %s (400) and sends nothing', async (_what, execute, args, field) => {
    const r = await raw(execute, args);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'invalid_request' });
    expect(r.body.detail).toContain(`arguments.${field}`);
    expect(sent()).toEqual([]);
  });

  it('sends a valid one as it is', async () => {
    const r = await raw('guest-ssh-add-authorized-keys', { username: 'root', keys: [ED25519] });
    expect(r.status).toBe(200);
    expect(sent()[0]).toMatchObject({ execute: 'guest-ssh-add-authorized-keys', arguments: { username: 'root', keys: [ED25519] } });
  });
});
