// The ways around the guard rails, tried against the real guest1 (qemu-ga 7.2) through a gateway process with
// tokens: the raw endpoint instead of the resource routes, the environment instead of the program, someone
// else's pid, a control character in a path. What the guest holds afterwards is read back with virsh, not
// through the gateway under test.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { agentCommand, assertProvisioned, guest } from './support/guests.js';

const dom = guest((g) => g.name === 'guest1', 'guest1').name;
const scratch = `/tmp/qga-guard-${randomBytes(4).toString('hex')}`;
const tokens = {
  operator: newToken(),
  reader: newToken(),
  other: newToken(),
  envy: newToken(),
  alice: newToken(),
  bob: newToken(),
  root: newToken(),
};
let gw: GatewayProcess;

async function call(token: string, method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown, raw = false) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = raw ? 'application/octet-stream' : 'application/json';
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: raw ? (body as string) : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) as Record<string, any> };
}
const rawCmd = (token: string, execute: string, args?: object) =>
  call(token, 'POST', `/domains/${dom}/agent/commands`, { execute, ...(args ? { arguments: args } : {}) });

/** Runs a shell line in the guest through virsh (not through the gateway under test) and answers its stdout. */
async function inGuest(line: string): Promise<string> {
  const { pid } = agentCommand(dom, {
    execute: 'guest-exec',
    arguments: { path: '/bin/sh', arg: ['-c', line], 'capture-output': true },
  }) as { pid: number };
  for (let i = 0; i < 100; i++) {
    const s = agentCommand(dom, { execute: 'guest-exec-status', arguments: { pid } }) as { exited: boolean; 'out-data'?: string };
    if (s.exited) return Buffer.from(s['out-data'] ?? '', 'base64').toString();
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`guest command did not finish: ${line}`);
}

beforeAll(async () => {
  assertProvisioned();
  const id = (name: keyof typeof tokens, scopes: string[], policies?: object) => ({
    name,
    tokenSha256: tokenSha256(tokens[name]),
    scopes,
    ...(policies ? { policies } : {}),
  });
  gw = await startGateway({
    rawCommands: { enabled: true },
    auth: {
      mode: 'tokens',
      identities: [
        id('operator', ['read', 'admin']),
        id('reader', ['read', 'admin', 'files:read', 'files:write'], {
          files: { read: { allow: ['/srv/qga-test/**'] }, write: { allow: [`${scratch}/ok/*`], deny: [`${scratch}/secret/**`] } },
        }),
        id('other', ['read', 'admin', 'files:read', 'files:write']),
        id('envy', ['read', 'exec', 'admin'], { exec: { allow: ['/usr/bin/env'], env: ['LANG'] } }),
        id('alice', ['read', 'exec']),
        id('bob', ['read', 'exec']),
        id('root', ['read', 'exec', 'admin', 'files:read', 'files:write'], { files: { write: { deny: [`${scratch}/secret/**`] } } }),
      ],
    },
  });
  await inGuest(`mkdir -p ${scratch}/ok ${scratch}/secret`);
});
afterAll(async () => {
  await gw?.stop();
  await inGuest(`rm -rf ${scratch}`).catch(() => undefined);
});

describe('guard rails against guest1', () => {
  it('the raw endpoint runs no program and opens no file for read + admin', async () => {
    const shell = await rawCmd(tokens.operator, 'guest-exec', {
      path: '/bin/sh',
      arg: ['-c', `touch ${scratch}/pwned`],
      'capture-output': true,
    });
    expect(shell.status).toBe(403);
    expect(shell.json().detail).toMatch(/'exec'/);
    expect((await rawCmd(tokens.operator, 'guest-file-open', { path: '/etc/shadow', mode: 'r' })).status).toBe(403);
    expect((await rawCmd(tokens.operator, 'guest-file-open', { path: `${scratch}/ok/x`, mode: 'w' })).status).toBe(403);
    expect(await inGuest(`ls -A ${scratch}; ls -A ${scratch}/ok`)).toBe('ok\nsecret\n');
  });

  it('a raw open is held to the files policy, and its handle to its opener, on the real agent', async () => {
    expect((await rawCmd(tokens.reader, 'guest-file-open', { path: '/etc/shadow' })).status).toBe(403);
    expect((await rawCmd(tokens.reader, 'guest-file-open', { path: `${scratch}/secret/x`, mode: 'w' })).status).toBe(403);
    const opened = await rawCmd(tokens.reader, 'guest-file-open', { path: '/srv/qga-test/hello.txt', mode: 'r' });
    expect(opened.status, opened.text).toBe(200);
    const handle = opened.json().return as number;
    try {
      expect((await rawCmd(tokens.other, 'guest-file-read', { handle, count: 64 })).status).toBe(403);
      const read = await rawCmd(tokens.reader, 'guest-file-read', { handle, count: 64 });
      expect(read.status, read.text).toBe(200);
      expect(Buffer.from(read.json().return['buf-b64'], 'base64').toString()).toBe(`hello from ${dom}\n`);
    } finally {
      expect((await rawCmd(tokens.reader, 'guest-file-close', { handle })).status).toBe(200);
    }
    expect(await inGuest(`ls -A ${scratch}/secret`)).toBe('');
  });

  it('an exec policy refuses LD_PRELOAD and unlisted variables, and passes listed ones to the real program', async () => {
    for (const env of [{ LD_PRELOAD: `${scratch}/ok/evil.so` }, { TZ: 'UTC' }, { PATH: '/tmp' }]) {
      const r = await call(tokens.envy, 'POST', `/domains/${dom}/exec`, { path: '/usr/bin/env', env, wait: { timeoutMs: 30_000 } });
      expect(r.status, JSON.stringify(env)).toBe(403);
    }
    expect((await rawCmd(tokens.envy, 'guest-exec', { path: '/usr/bin/env', env: ['LD_PRELOAD=/x'] })).status).toBe(403);
    const ok = await call(tokens.envy, 'POST', `/domains/${dom}/exec`, {
      path: '/usr/bin/env',
      env: { LANG: 'C.UTF-8' },
      wait: { timeoutMs: 30_000 },
    });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.json().stdout.data).toBe('LANG=C.UTF-8\n');
  });

  it("another identity's process answers 404 like an unknown pid; its starter and admin read it", async () => {
    const started = await call(tokens.alice, 'POST', `/domains/${dom}/exec`, {
      path: '/bin/sh',
      args: ['-c', 'sleep 1; echo alice-secret'],
    });
    expect(started.status).toBe(201);
    const pid = started.json().pid as number;
    const stolen = await call(tokens.bob, 'GET', `/domains/${dom}/exec/${pid}?waitMs=5000`);
    expect(stolen.status).toBe(404);
    expect(stolen.json().code).toBe('process_not_found');
    expect(stolen.text).not.toContain('alice-secret');
    const mine = await call(tokens.alice, 'GET', `/domains/${dom}/exec/${pid}?waitMs=30000`);
    expect(mine.status).toBe(200);
    expect(mine.json().stdout.data).toBe('alice-secret\n');
    expect((await call(tokens.root, 'GET', `/domains/${dom}/exec/${pid}`)).json().stdout.data).toBe('alice-secret\n');
    expect((await call(tokens.bob, 'GET', `/domains/${dom}/exec/${pid}`)).status).toBe(404);
  });

  it('a control character in a guest path is 400, and nothing lands in the denied directory', async () => {
    for (const c of ['%0a', '%0d', '%1b', '%7f']) {
      const put = await call(tokens.root, 'PUT', `/domains/${dom}/files${scratch}/secret/a${c}b`, 'planted', true);
      expect(put.status, c).toBe(400);
      expect(put.json().code).toBe('invalid_request');
      expect((await call(tokens.root, 'GET', `/domains/${dom}/files${scratch}/secret/a${c}b`)).status, c).toBe(400);
    }
    expect((await rawCmd(tokens.root, 'guest-file-open', { path: `${scratch}/secret/a\nb`, mode: 'w' })).status).toBe(400);
    expect(await inGuest(`ls -A ${scratch}/secret`)).toBe('');
  });
});
