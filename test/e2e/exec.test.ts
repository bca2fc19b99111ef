// Programs in the real guests through the built gateway: output, exit codes, signals, stdin, env, the
// result kept after qemu-ga reaps the process, unknown pids and missing programs. Harmless programs only:
// guest1 and guest2 are shared with the other e2e tests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { jsonCall } from './support/guest-control.js';
import { agentCommand, assertProvisioned, guest } from './support/guests.js';

let gw: GatewayProcess;
const g1 = guest((g) => g.name === 'guest1', 'guest1');
const g2 = guest((g) => g.name === 'guest2', 'guest2');
const call = (method: string, path: string, body?: unknown) => jsonCall(gw.url, method, path, body);
const WAIT = { timeoutMs: 60_000 };

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
});

describe('exec on the real guests', () => {
  it('captures stdout and stderr and a non-zero exit code', async () => {
    const r = await call('POST', `/domains/${g1.name}/exec`, {
      path: '/bin/sh',
      args: ['-c', 'echo out; echo err >&2; exit 3'],
      wait: WAIT,
    });
    expect(r.status).toBe(201);
    expect(r.headers.get('location')).toBe(`/domains/${g1.name}/exec/${r.body.pid}`);
    expect(r.body).toMatchObject({
      domain: { host: 'local', name: g1.name, uuid: g1.uuid },
      exited: true,
      exitCode: 3,
      signal: null,
      stdout: { encoding: 'text', data: 'out\n', bytes: 4, truncated: false },
      stderr: { encoding: 'text', data: 'err\n', bytes: 4, truncated: false },
    });
  });

  it('answers the kept result when asked again after qemu-ga has reaped the process', async () => {
    const started = await call('POST', `/domains/${g2.name}/exec`, { path: '/bin/sh', args: ['-c', 'echo kept; exit 7'] });
    expect(started.status).toBe(201);
    expect(started.body.exited).toBe(false);
    const pid: number = started.body.pid;
    const first = await call('GET', `/domains/${g2.name}/exec/${pid}?waitMs=60000`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ pid, exited: true, exitCode: 7, stdout: { data: 'kept\n' } });
    // qemu-ga itself has forgotten it now...
    expect(() => agentCommand(g2.name, { execute: 'guest-exec-status', arguments: { pid } })).toThrow(/Invalid parameter 'pid'/);
    // ...and the gateway still answers.
    const second = await call('GET', `/domains/${g2.name}/exec/${pid}`);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
  });

  it('reports a process that is still running, then how it ended', async () => {
    const started = await call('POST', `/domains/${g1.name}/exec`, { path: '/bin/sleep', args: ['60'] });
    const pid: number = started.body.pid;
    const running = await call('GET', `/domains/${g1.name}/exec/${pid}`);
    expect(running.status).toBe(200);
    expect(running.body).toMatchObject({ pid, exited: false, exitCode: null, signal: null, stdout: null, stderr: null });
    const kill = await call('POST', `/domains/${g1.name}/exec`, { path: '/bin/kill', args: ['-TERM', String(pid)], wait: WAIT });
    expect(kill.body.exitCode).toBe(0);
    const done = await call('GET', `/domains/${g1.name}/exec/${pid}?waitMs=60000`);
    expect(done.body).toMatchObject({ pid, exited: true, exitCode: null, signal: 15 });
  });

  it('waits on GET for a process started without waiting; stdin closes after the input', async () => {
    const started = await call('POST', `/domains/${g1.name}/exec`, {
      path: '/bin/sh',
      args: ['-c', 'read line; echo "got $line"'],
      input: { text: 'one' },
    });
    const pid: number = started.body.pid;
    const done = await call('GET', `/domains/${g1.name}/exec/${pid}?waitMs=60000`);
    expect(done.body).toMatchObject({ exited: true, exitCode: 0, stdout: { data: 'got one\n' } });
  });

  it('reports the signal that killed a process', async () => {
    const r = await call('POST', `/domains/${g1.name}/exec`, { path: '/bin/sh', args: ['-c', 'kill -9 $$'], wait: WAIT });
    expect(r.body).toMatchObject({ exited: true, exitCode: null, signal: 9 });
  });

  it('answers binary output as base64', async () => {
    const r = await call('POST', `/domains/${g2.name}/exec`, { path: '/bin/sh', args: ['-c', "printf '\\377\\000\\001'"], wait: WAIT });
    expect(r.body.stdout).toEqual({ encoding: 'base64', data: '/wAB', bytes: 3, truncated: false });
  });

  it('feeds stdin as text and as base64', async () => {
    const text = await call('POST', `/domains/${g1.name}/exec`, { path: '/bin/cat', input: { text: 'héllo\nwörld' }, wait: WAIT });
    expect(text.body.stdout).toMatchObject({ encoding: 'text', data: 'héllo\nwörld' });
    const bin = await call('POST', `/domains/${g1.name}/exec`, {
      path: '/bin/sh',
      args: ['-c', 'od -An -tx1 | tr -d " \\n"'],
      input: { base64: '/wAB' },
      wait: WAIT,
    });
    expect(bin.body.stdout.data).toBe('ff0001');
  });

  it('takes stdin up to the 128 KiB cap, and refuses more with 413 before the agent', async () => {
    const cap = Buffer.alloc(128 * 1024, 0x61).toString('base64');
    const r = await call('POST', `/domains/${g2.name}/exec`, { path: '/usr/bin/wc', args: ['-c'], input: { base64: cap }, wait: WAIT });
    expect(r.body).toMatchObject({ exitCode: 0, stdout: { data: expect.stringMatching(/^\s*131072\s*$/) } });
    const over = await call('POST', `/domains/${g2.name}/exec`, { path: '/usr/bin/wc', input: { text: 'a'.repeat(128 * 1024 + 1) } });
    expect(over.status).toBe(413);
    expect(over.body.code).toBe('payload_too_large');
  });

  it('passes the environment (qemu-ga then gives the program only that environment)', async () => {
    const r = await call('POST', `/domains/${g2.name}/exec`, {
      path: '/usr/bin/env',
      env: { GREETING: 'hello world', EMPTY: '' },
      wait: WAIT,
    });
    expect(r.body.exitCode).toBe(0);
    expect(r.body.stdout.data.split('\n').filter(Boolean).sort()).toEqual(['EMPTY=', 'GREETING=hello world']);
  });

  it('runs a program found in the agent PATH', async () => {
    const r = await call('POST', `/domains/${g2.name}/exec`, { path: 'cat', args: ['/srv/qga-test/hello.txt'], wait: WAIT });
    expect(r.body).toMatchObject({ exitCode: 0, stdout: { data: `hello from ${g2.name}\n` } });
  });

  it('answers 404 process_not_found for a pid never started through the agent', async () => {
    // pid 1 is init: a process that exists in the guest, but not one qemu-ga started.
    for (const pid of [1, 2_000_000_000]) {
      const r = await call('GET', `/domains/${g1.name}/exec/${pid}`);
      expect(r.status).toBe(404);
      expect(r.type).toMatch(/problem\+json/);
      expect(r.body).toMatchObject({ code: 'process_not_found', command: 'guest-exec-status', agentDesc: "Invalid parameter 'pid'" });
    }
  });

  it("answers 404 with the agent's message for a program that does not exist, 403 for one that is not executable", async () => {
    const r = await call('POST', `/domains/${g1.name}/exec`, { path: '/no/such/program', args: ['x'] });
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('file_not_found');
    expect(r.body.agentDesc).toMatch(/Failed to execute child process .*\/no\/such\/program.*\(No such file or directory\)/);
    expect(r.body.detail).toContain('/no/such/program');
    const notExec = await call('POST', `/domains/${g1.name}/exec`, { path: '/srv/qga-test/hello.txt' });
    expect(notExec.status).toBe(403);
    expect(notExec.body.code).toBe('permission_denied');
  });

  it('refuses a malformed request with 400 and a domain without an agent with 503', async () => {
    expect((await call('POST', `/domains/${g1.name}/exec`, { args: ['x'] })).status).toBe(400);
    const noAgent = guest((g) => !g.agent && g.running, 'running guest without an agent');
    const r = await call('POST', `/domains/${noAgent.name}/exec`, { path: '/bin/true' });
    expect(r.status).toBe(503);
    expect(r.body.code).toBe('agent_not_configured');
  });
});
