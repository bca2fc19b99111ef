// Per-identity policies: the glob matching itself, then the file, exec and raw routes against the fake libvirtd
// with tokens. A refusal is 403 forbidden decided before any agent command (the agent log stays empty), and
// the raw endpoint is no way around the file and exec policies.
import { describe, expect, it } from 'vitest';
import { checkExec, compilePolicies, pathAllowed, pathGlob } from '../../src/auth/policies.js';
import { makeIdentity } from '../../src/auth/identity.js';
import { SCOPES } from '../../src/config/scopes.js';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { GatewayError } from '../../src/errors.js';
import type { FakeLibvirtd } from '../support/fake-libvirtd.js';
import { FakeGuestFiles } from '../support/fake-guest-files.js';
import { GuestControlAgent } from '../support/guest-control-agent.js';
import { build } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';

describe('path globs', () => {
  it("'*' stays within a segment, '**' crosses them, '?' is one character", () => {
    expect(pathGlob('/srv/*.txt').test('/srv/a.txt')).toBe(true);
    expect(pathGlob('/srv/*.txt').test('/srv/d/a.txt')).toBe(false);
    expect(pathGlob('/srv/**').test('/srv/d/e/a.txt')).toBe(true);
    expect(pathGlob('/srv/**/a.txt').test('/srv/a.txt')).toBe(true);
    expect(pathGlob('/srv/**/a.txt').test('/srv/x/y/a.txt')).toBe(true);
    expect(pathGlob('/srv/?.txt').test('/srv/ab.txt')).toBe(false);
    expect(pathGlob('/srv/a.txt').test('/srv/aXtxt')).toBe(false); // '.' is literal
  });

  it('deny wins over allow; no allow list means everything not denied; separators are normalised', () => {
    const p = compilePolicies({ files: { read: { allow: ['/srv/**'], deny: ['/srv/secret/**'] }, write: { deny: ['/etc/**'] } } });
    expect(pathAllowed(p.read, '/srv/a/b.txt')).toBe(true);
    expect(pathAllowed(p.read, '/srv/secret/key')).toBe(false);
    expect(pathAllowed(p.read, '/srv//secret/key')).toBe(false);
    expect(pathAllowed(p.read, '/etc/passwd')).toBe(false);
    expect(pathAllowed(p.write, '/tmp/x')).toBe(true);
    expect(pathAllowed(p.write, '//etc/passwd')).toBe(false);
    const w = compilePolicies({ files: { read: { allow: ['C:/Users/**'], deny: [] } } });
    expect(pathAllowed(w.read, 'c:\\users\\bob\\a.txt')).toBe(true);
    expect(pathAllowed(w.read, 'C:/Windows/win.ini')).toBe(false);
  });

  it('exec: absolute programs on the allow list only, never a bare name or a .. climb', () => {
    const id = makeIdentity('x', ['exec'], ['*'], { exec: { allow: ['/bin/true', '/usr/bin/*'] } });
    expect(() => checkExec(id, '/bin/true')).not.toThrow();
    expect(() => checkExec(id, '/usr/bin/id')).not.toThrow();
    for (const bad of ['/bin/sh', 'true', 'id', '/usr/bin/../../bin/sh', '/usr/bin/x/y']) {
      expect(() => checkExec(id, bad), bad).toThrow(GatewayError);
    }
    expect(() => checkExec(makeIdentity('y', ['exec'], ['*']), 'sh')).not.toThrow();
  });

  it('config: policies are optional and strict', () => {
    const base = { name: 'p', tokenSha256: 'a'.repeat(64), scopes: ['read'] };
    expect(parseConfig({ auth: { identities: [base] } }).auth.identities[0]!.policies).toBeUndefined();
    expect(
      parseConfig({ auth: { identities: [{ ...base, policies: { files: { read: { allow: ['/srv/**'] } } } }] } }).auth.identities[0]!
        .policies?.files?.read?.deny,
    ).toEqual([]);
    expect(() => parseConfig({ auth: { identities: [{ ...base, policies: { files: { reed: {} } } }] } })).toThrow(ConfigError);
    expect(() => parseConfig({ auth: { identities: [{ ...base, policies: { exec: { allow: ['true'] } } }] } })).toThrow(ConfigError);
    expect(() => parseConfig({ auth: { identities: [{ ...base, policies: { files: { write: { deny: ['etc/**'] } } } }] } })).toThrow(
      ConfigError,
    );
  });
});

const tokens = { files: newToken(), exec: newToken(), raw: newToken(), free: newToken() };
const identities = [
  {
    name: 'files',
    tokenSha256: tokenSha256(tokens.files),
    scopes: [...SCOPES],
    policies: { files: { read: { allow: ['/srv/**'], deny: ['/srv/secret/**'] }, write: { allow: ['/tmp/*'] } } },
  },
  { name: 'exec', tokenSha256: tokenSha256(tokens.exec), scopes: [...SCOPES], policies: { exec: { allow: ['/bin/true'] } } },
  {
    name: 'raw',
    tokenSha256: tokenSha256(tokens.raw),
    scopes: [...SCOPES],
    policies: { raw: { allow: ['guest-ping', 'guest-get-host-name'] } },
  },
  { name: 'free', tokenSha256: tokenSha256(tokens.free), scopes: [...SCOPES] },
];

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;

async function setup(kind: 'files' | 'control') {
  const guest = new FakeGuestFiles();
  guest.files.set('/srv/a.txt', Buffer.from('hello'));
  guest.files.set('/srv/secret/key', Buffer.from('k'));
  guest.files.set('/etc/passwd', Buffer.from('root:x:0:0'));
  const agent = kind === 'files' ? guest.handler : new GuestControlAgent().handler;
  ({ fake, gw } = await build({
    domains: ['web1'],
    agent,
    config: { auth: { mode: 'tokens', identities } as never, rawCommands: { enabled: true } },
  }));
}

async function call(token: string, method: 'GET' | 'HEAD' | 'PUT' | 'POST', url: string, payload?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (method === 'PUT') headers['content-type'] = 'application/octet-stream';
  const res = await gw!.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as string }) });
  return { status: res.statusCode, body: res.body, json: () => res.json() as { code: string; detail: string } };
}

/** A refusal: 403 forbidden, and the agent never heard of the request. */
async function expectRefused(r: Awaited<ReturnType<typeof call>>, detail: RegExp) {
  expect(r.status).toBe(403);
  expect(r.json().code).toBe('forbidden');
  expect(r.json().detail).toMatch(detail);
  expect(fake!.agentLog).toHaveLength(0);
}

describe('file policies over HTTP', () => {
  it('reads an allowed path; refuses a denied one (deny over allow) and one outside the allow list with nothing sent', async () => {
    await setup('files');
    const ok = await call(tokens.files, 'GET', '/domains/web1/files/srv/a.txt');
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('hello');
    fake!.agentLog.length = 0;
    for (const url of ['/domains/web1/files/srv/secret/key', '/domains/web1/files/etc/passwd', '/domains/web1/files/srv//secret/key']) {
      await expectRefused(await call(tokens.files, 'GET', url), /may not read/);
      expect((await call(tokens.files, 'HEAD', url)).status).toBe(403);
    }
    expect(fake!.agentLog).toHaveLength(0);
    // An identity without policies reads it.
    expect((await call(tokens.free, 'GET', '/domains/web1/files/etc/passwd')).status).toBe(200);
  });

  it("refuses '..' tricks: 400 when they reach the route, else the path the URL resolves to is checked", async () => {
    await setup('files');
    const r = await call(tokens.files, 'GET', '/domains/web1/files/srv/a%2F..%2F..%2Fetc%2Fpasswd');
    expect(r.status, r.body).toBe(400);
    expect(fake!.agentLog).toHaveLength(0);
    // Dots the URL parser resolves first: the path that reaches the route is /etc/passwd, refused by the policy.
    await expectRefused(await call(tokens.files, 'GET', '/domains/web1/files/srv/%2E%2E/etc/passwd'), /may not read '\/etc\/passwd'/);
  });

  it('writes only where the write rules allow', async () => {
    await setup('files');
    await expectRefused(await call(tokens.files, 'PUT', '/domains/web1/files/srv/a.txt', 'x'), /may not write/);
    await expectRefused(await call(tokens.files, 'PUT', '/domains/web1/files/tmp/d/x', 'x'), /may not write/);
    const ok = await call(tokens.files, 'PUT', '/domains/web1/files/tmp/x', 'data');
    expect(ok.status).toBe(200);
  });
});

describe('exec policies over HTTP', () => {
  it('starts an allowed program; refuses another, and a bare name, with nothing sent', async () => {
    await setup('control');
    await expectRefused(
      await call(tokens.exec, 'POST', '/domains/web1/exec', { path: '/bin/sh', args: ['-c', 'id'] }),
      /may not run '\/bin\/sh'/,
    );
    await expectRefused(await call(tokens.exec, 'POST', '/domains/web1/exec', { path: 'true' }), /absolute/);
    const ok = await call(tokens.exec, 'POST', '/domains/web1/exec', { path: '/bin/true' });
    expect(ok.status).toBe(201);
    expect(fake!.agentLog.map((e) => e.execute)).toContain('guest-exec');
  });
});

describe('raw endpoint under policies', () => {
  it('sends only commands on the raw allow list', async () => {
    await setup('control');
    await expectRefused(await call(tokens.raw, 'POST', '/domains/web1/agent/commands', { execute: 'guest-get-users' }), /raw allow list/);
    expect((await call(tokens.raw, 'POST', '/domains/web1/agent/commands', { execute: 'guest-ping' })).status).toBe(200);
  });

  it('is no way around file policies: a raw guest-file-open is held to them by its mode, a handle it did not open refused', async () => {
    await setup('control');
    for (const body of [
      { execute: 'guest-file-open', arguments: { path: '/etc/passwd', mode: 'r' } },
      { execute: 'guest-file-open', arguments: { path: '/srv/secret/key' } },
      { execute: 'guest-file-open', arguments: { path: '/srv/a.txt', mode: 'w' } },
      { execute: 'guest-file-open', arguments: { path: '/tmp/x', mode: 'w+' } },
    ]) {
      await expectRefused(await call(tokens.files, 'POST', '/domains/web1/agent/commands', body), /may not (read|write)/);
    }
    for (const body of [
      { execute: 'guest-file-read', arguments: { handle: 1 } },
      { execute: 'guest-file-write', arguments: { handle: 1, 'buf-b64': '' } },
    ]) {
      await expectRefused(await call(tokens.files, 'POST', '/domains/web1/agent/commands', body), /file policies/);
    }
  });

  it('is no way around exec policies: a raw guest-exec is held to them like POST /exec', async () => {
    await setup('control');
    await expectRefused(
      await call(tokens.exec, 'POST', '/domains/web1/agent/commands', { execute: 'guest-exec', arguments: { path: '/bin/sh' } }),
      /may not run '\/bin\/sh'/,
    );
    await expectRefused(
      await call(tokens.exec, 'POST', '/domains/web1/agent/commands', { execute: 'guest-exec', arguments: { path: 'true' } }),
      /absolute/,
    );
    expect(
      (await call(tokens.exec, 'POST', '/domains/web1/agent/commands', { execute: 'guest-exec', arguments: { path: '/bin/true' } })).status,
    ).toBe(200);
    // Other raw commands still go through for that identity, and guest-exec for one without policies.
    expect((await call(tokens.exec, 'POST', '/domains/web1/agent/commands', { execute: 'guest-ping' })).status).toBe(200);
    expect(
      (await call(tokens.free, 'POST', '/domains/web1/agent/commands', { execute: 'guest-exec', arguments: { path: '/bin/sh' } })).status,
    ).toBe(200);
  });
});
