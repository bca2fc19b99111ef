// Guard rails tried the way an attacker would, over HTTP against the fake libvirtd: another spelling of a domain,
// the raw endpoint instead of the resource route, the environment instead of the program, someone else's pid, a
// control character in a path. Each refusal happens before any agent command is sent.
import { describe, expect, it } from 'vitest';
import { SCOPES } from '../../src/config/scopes.js';
import type { FakeGuestFiles } from '../support/fake-guest-files.js';
import type { FakeLibvirtd } from '../support/fake-libvirtd.js';
import { startEnv, type Env, type IdentitySpec } from '../support/guard-rail-env.js';
import type { GuestControlAgent } from '../support/guest-control-agent.js';
import type { TestGateway } from '../support/test-gateway.js';

let env: Env | null = null;
let fake: FakeLibvirtd;
let gw: TestGateway;
let files: FakeGuestFiles;
let control: GuestControlAgent;

/** A gateway with one token per identity; files and exec both answered by fakes built on real agents' replies. */
async function start(specs: Record<string, IdentitySpec>, domains: { name: string; uuid?: string }[] = [{ name: 'web1' }]) {
  env = await startEnv(specs, domains);
  ({ fake, gw, files, control } = env);
  files.files.set('/srv/ok/a.txt', Buffer.from('hello'));
  files.files.set('/srv/secret/key', Buffer.from('k'));
  files.files.set('/etc/shadow', Buffer.from('root:$6$secret'));
  return env.tokens;
}

async function call(token: string, method: 'GET' | 'PUT' | 'POST', url: string, payload?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (method === 'PUT') headers['content-type'] = 'application/octet-stream';
  const res = await gw.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as string }) });
  return {
    status: res.statusCode,
    body: res.body,
    json: () => res.json() as { code: string; detail: string; pid?: number; return?: unknown },
  };
}

const raw = (token: string, execute: string, args?: object) =>
  call(token, 'POST', '/domains/web1/agent/commands', { execute, ...(args ? { arguments: args } : {}) });
const sent = () => fake.agentLog.map((e) => e.execute).filter((c) => c !== 'guest-info');

describe('domain patterns match only what they name', () => {
  it('a name glob never matches a UUID, another case, or the host part of host:name', async () => {
    const tokens = await start(
      {
        a: { scopes: ['read'], domains: ['a*'] },
        exact: { scopes: ['read'], domains: ['a1'] },
        host: { scopes: ['read'], domains: ['loc*'] },
      },
      [
        { name: 'a1', uuid: '0b000000-0000-4000-8000-000000000001' },
        { name: 'A1', uuid: '0c000000-0000-4000-8000-000000000002' },
        { name: 'b1', uuid: 'aa000000-0000-4000-8000-000000000003' },
      ],
    );
    const ping = (token: string, dom: string) => call(token, 'GET', `/domains/${dom}/agent/ping`);
    expect((await ping(tokens.a!, 'a1')).status).toBe(200);
    for (const dom of ['b1', 'aa000000-0000-4000-8000-000000000003', 'A1']) expect((await ping(tokens.a!, dom)).status, dom).toBe(403);
    expect((await ping(tokens.exact!, 'a1')).status).toBe(200);
    expect((await ping(tokens.exact!, 'A1')).status).toBe(403);
    // 'loc*' is a name pattern: it must not match the host "local" of local:b1.
    for (const dom of ['b1', 'local:b1', 'a1']) expect((await ping(tokens.host!, dom)).status, dom).toBe(403);
    const listed = (await call(tokens.a!, 'GET', '/domains')).body;
    expect(JSON.parse(listed).domains.map((d: { name: string }) => d.name)).toEqual(['a1']);
    expect((await call(tokens.host!, 'GET', '/domains')).json()).toMatchObject({ domains: [] });
  });

  it('a UUID grant is a full UUID in any case and spelling, or uuid: with a pattern, and grants that domain by every name', async () => {
    const uuid = 'aa000000-0000-4000-8000-00000000000b';
    const tokens = await start(
      {
        full: { scopes: ['read'], domains: [uuid.toUpperCase().replace(/-/g, '')] },
        prefixed: { scopes: ['read'], domains: ['uuid:AA*'] },
        qualified: { scopes: ['read'], domains: ['local:b1'] },
      },
      [
        { name: 'b1', uuid },
        { name: 'c1', uuid: 'bb000000-0000-4000-8000-00000000000c' },
      ],
    );
    for (const t of [tokens.full!, tokens.prefixed!, tokens.qualified!]) {
      for (const dom of ['b1', uuid, uuid.toUpperCase(), 'local:b1'])
        expect((await call(t, 'GET', `/domains/${dom}/agent/ping`)).status, dom).toBe(200);
      expect((await call(t, 'GET', '/domains/c1/agent/ping')).status).toBe(403);
    }
  });
});

describe('the raw endpoint is no way around the other scopes', () => {
  it('read + admin runs no program, opens no file, sets no password, freezes and powers nothing', async () => {
    const tokens = await start({ op: { scopes: ['read', 'admin'] } });
    for (const [execute, args] of [
      ['guest-exec', { path: '/bin/sh', arg: ['-c', 'cat /etc/shadow'] }],
      ['guest-file-open', { path: '/etc/shadow', mode: 'r' }],
      ['guest-file-open', { path: '/root/.ssh/authorized_keys', mode: 'a' }],
      ['guest-file-read', { handle: 1000 }],
      ['guest-set-user-password', { username: 'root', password: 'eA==', crypted: false }],
      ['guest-ssh-add-authorized-keys', { username: 'root', keys: ['ssh-ed25519 AAAA x'] }],
      ['guest-set-time', {}],
      ['guest-fsfreeze-thaw', undefined],
      ['guest-fstrim', undefined],
    ] as const) {
      const r = await raw(tokens.op!, execute, args);
      expect(r.status, execute).toBe(403);
      expect(r.json().code).toBe('forbidden');
    }
    expect(sent()).toEqual([]);
    // What read allows through a resource, admin + read allows raw.
    expect((await raw(tokens.op!, 'guest-get-host-name')).status).toBe(200);
  });

  it('applies the files policy to a raw guest-file-open by its mode, and keeps each raw handle to its opener', async () => {
    const policies = { files: { read: { allow: ['/srv/**'], deny: ['/srv/secret/**'] }, write: { allow: ['/tmp/*'] } } };
    const tokens = await start({
      reader: { scopes: ['read', 'admin', 'files:read', 'files:write'], policies },
      other: { scopes: ['read', 'admin', 'files:read', 'files:write'] },
    });
    for (const [path, mode] of [
      ['/srv/secret/key', 'r'],
      ['/etc/shadow', 'r'],
      ['/srv/ok/a.txt', 'r+'], // reads and writes: the write rules say no
      ['/srv/ok/a.txt', 'a'],
    ] as const) {
      const r = await raw(tokens.reader!, 'guest-file-open', { path, mode });
      expect(r.status, `${path} ${mode}`).toBe(403);
    }
    expect(sent()).toEqual([]);
    const opened = await raw(tokens.reader!, 'guest-file-open', { path: '/srv/ok/a.txt', mode: 'r' });
    expect(opened.status, opened.body).toBe(200);
    const handle = opened.json().return as number;
    // Someone else's handle: refused, whatever that identity may do otherwise.
    expect((await raw(tokens.other!, 'guest-file-read', { handle })).status).toBe(403);
    expect((await raw(tokens.other!, 'guest-file-close', { handle })).status).toBe(403);
    const read = await raw(tokens.reader!, 'guest-file-read', { handle, count: 100 });
    expect(read.status, read.body).toBe(200);
    expect(Buffer.from((read.json().return as { 'buf-b64': string })['buf-b64'], 'base64').toString()).toBe('hello');
    // A handle it did not open (a leftover, or one opened before a restart): its path is unknown, so no.
    expect((await raw(tokens.reader!, 'guest-file-read', { handle: handle + 1 })).status).toBe(403);
    expect((await raw(tokens.reader!, 'guest-file-close', { handle })).status).toBe(200);
    expect(files.leaked).toEqual([]);
  });
});

describe('a transfer’s handle is nobody else’s', () => {
  it('refuses raw commands on a handle a download holds, even to an identity without policies', async () => {
    const tokens = await start({ root: { scopes: [...SCOPES] } });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    files.intercept = async (cmd) => {
      if (cmd.execute === 'guest-file-read') await held;
      return undefined;
    };
    const download = call(tokens.root!, 'GET', '/domains/web1/files/srv/ok/a.txt');
    await expect.poll(() => files.opened.length).toBe(1);
    const handle = files.opened[0]!;
    for (const execute of ['guest-file-read', 'guest-file-seek', 'guest-file-close', 'guest-file-write']) {
      const r = await raw(tokens.root!, execute, {
        handle,
        ...(execute === 'guest-file-write' ? { 'buf-b64': 'eA==' } : {}),
        ...(execute === 'guest-file-seek' ? { offset: 0, whence: 'set' } : {}),
      });
      expect(r.status, execute).toBe(403);
      expect(r.json().detail).toMatch(/transfer/);
    }
    release();
    expect((await download).body).toBe('hello');
    expect(files.leaked).toEqual([]);
  });
});

describe('an exec policy covers the environment', () => {
  it('refuses any env, LD_PRELOAD first, when the policy lists no variable names: routed and raw', async () => {
    const tokens = await start({ strict: { scopes: ['read', 'exec', 'admin'], policies: { exec: { allow: ['/usr/bin/id'] } } } });
    const exec = (env: Record<string, string>) => call(tokens.strict!, 'POST', '/domains/web1/exec', { path: '/usr/bin/id', env });
    for (const env of [{ LD_PRELOAD: '/srv/ok/evil.so' }, { LANG: 'C' }] as Record<string, string>[])
      expect((await exec(env)).status, JSON.stringify(env)).toBe(403);
    expect((await raw(tokens.strict!, 'guest-exec', { path: '/usr/bin/id', env: ['LD_PRELOAD=/srv/ok/evil.so'] })).status).toBe(403);
    expect(sent()).toEqual([]);
    // The program alone, and the policy's other rule, still hold.
    expect((await exec({})).status).toBe(201);
    expect((await raw(tokens.strict!, 'guest-exec', { path: '/bin/sh', arg: ['-c', 'id'] })).status).toBe(403);
  });

  it('lets the names on the env list through, and never a loader or interpreter variable', async () => {
    const tokens = await start({
      lang: { scopes: ['read', 'exec', 'admin'], policies: { exec: { allow: ['/usr/bin/id'], env: ['LANG', 'TZ'] } } },
    });
    const exec = (env: Record<string, string>) => call(tokens.lang!, 'POST', '/domains/web1/exec', { path: '/usr/bin/id', env });
    for (const env of [
      { LD_PRELOAD: '/srv/ok/evil.so' },
      { ld_preload: '/x' },
      { LD_AUDIT: '/x' },
      { PATH: '/tmp' },
      { BASH_ENV: '/x' },
      { LANG: 'C', PYTHONPATH: '/x' },
      { lang: 'C' },
    ] as Record<string, string>[]) {
      expect((await exec(env)).status, JSON.stringify(env)).toBe(403);
    }
    expect((await raw(tokens.lang!, 'guest-exec', { path: '/usr/bin/id', env: ['LANG'] })).status).toBe(403);
    expect(sent()).toEqual([]);
    expect((await exec({ LANG: 'C', TZ: 'UTC' })).status).toBe(201);
    expect((await raw(tokens.lang!, 'guest-exec', { path: '/usr/bin/id', env: ['LANG=C'] })).status).toBe(200);
    expect(sent()).toEqual(['guest-exec', 'guest-exec']);
  });
});

describe('exec results belong to whoever started the process', () => {
  it("another identity's pid answers like an unknown one, without asking the agent; admin sees all", async () => {
    const tokens = await start({
      alice: { scopes: ['read', 'exec'] },
      bob: { scopes: ['read', 'exec'] },
      root: { scopes: ['read', 'exec', 'admin'] },
    });
    control.onExec = () => ({ runningPolls: 0, exitcode: 0, out: Buffer.from('alice-secret\n') });
    const started = await call(tokens.alice!, 'POST', '/domains/web1/exec', { path: '/bin/sh', args: ['-c', 'echo alice-secret'] });
    expect(started.status).toBe(201);
    const pid = started.json().pid!;
    const before = sent().length;
    const stolen = await call(tokens.bob!, 'GET', `/domains/web1/exec/${pid}`);
    const unknown = await call(tokens.bob!, 'GET', `/domains/web1/exec/${pid + 1000}`);
    expect(stolen.status).toBe(404);
    expect(stolen.json().code).toBe('process_not_found');
    expect(stolen.body).not.toContain('alice-secret');
    expect({ status: unknown.status, code: unknown.json().code }).toEqual({ status: stolen.status, code: stolen.json().code });
    expect(sent().length).toBe(before);
    const own = await call(tokens.alice!, 'GET', `/domains/web1/exec/${pid}`);
    expect(own.status).toBe(200);
    expect(own.body).toContain('alice-secret');
    // The result is cached now; admin reads it too, and bob still may not.
    expect((await call(tokens.root!, 'GET', `/domains/web1/exec/${pid}`)).body).toContain('alice-secret');
    expect((await call(tokens.bob!, 'GET', `/domains/web1/exec/${pid}`)).status).toBe(404);
  });

  it('a raw guest-exec is its sender’s too', async () => {
    const tokens = await start({ alice: { scopes: ['read', 'exec', 'admin'] }, bob: { scopes: ['read', 'exec'] } });
    const started = await raw(tokens.alice!, 'guest-exec', { path: '/bin/true' });
    const pid = (started.json().return as { pid: number }).pid;
    expect((await call(tokens.bob!, 'GET', `/domains/web1/exec/${pid}`)).status).toBe(404);
  });
});

describe('control characters in guest paths', () => {
  it('are refused with 400 on read, write and a raw open, so a deny rule cannot be slipped past', async () => {
    const tokens = await start({
      fenced: { scopes: [...SCOPES], policies: { files: { read: { deny: ['/srv/secret/**'] }, write: { deny: ['/srv/secret/**'] } } } },
    });
    for (const c of ['%0a', '%0d', '%09', '%1b', '%7f', '%00']) {
      const get = await call(tokens.fenced!, 'GET', `/domains/web1/files/srv/secret/a${c}b`);
      expect(get.status, c).toBe(400);
      expect(get.json().code).toBe('invalid_request');
      expect((await call(tokens.fenced!, 'PUT', `/domains/web1/files/srv/secret/a${c}b`, 'planted')).status, c).toBe(400);
    }
    expect((await raw(tokens.fenced!, 'guest-file-open', { path: '/srv/secret/a\nb', mode: 'w' })).status).toBe(400);
    expect((await raw(tokens.fenced!, 'guest-file-open', { path: 'srv/secret/key' })).status).toBe(400);
    expect(sent()).toEqual([]);
    expect([...files.files.keys()].filter((p) => p.startsWith('/srv/secret/'))).toEqual(['/srv/secret/key']);
  });
});
