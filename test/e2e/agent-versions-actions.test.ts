// Files, programs and raw commands on both agent versions run here in a VM: guest2 (busybox, qemu-ga 7.2) and
// debian13 (Debian 13 with GNU coreutils and systemd, qemu-ga 10.0). The same requests, the same answers: the
// atomic replace runs the guest's own sh, mv, chown and chmod (busybox on one, GNU on the other), and every
// error the agent words differently between versions must map to the same problem. Files live under
// /tmp/qga-versions-<random>/ in each guest and are removed after.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { jsonCall } from './support/guest-control.js';
import { agentFds, guestRun, guestSha256 } from './support/files.js';
import { agentCommand, assertProvisioned, guest } from './support/guests.js';

let gw: GatewayProcess;
let raw: GatewayProcess;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const call = (method: string, path: string, body?: unknown) => jsonCall(gw.url, method, path, body);

async function put(dom: string, path: string, body: Buffer, query = ''): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.url}/domains/${dom}/files${path}${query}`, {
    method: 'PUT',
    body,
    headers: { 'content-type': 'application/octet-stream' },
  });
  return { status: res.status, body: await res.json() };
}
async function download(
  dom: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const res = await fetch(`${gw.url}/domains/${dom}/files${path}`, { headers });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway();
  raw = await startGateway({ rawCommands: { enabled: true } });
});
afterAll(async () => {
  await gw?.stop();
  await raw?.stop();
});

describe.each([
  { label: 'qemu-ga 7.2 (busybox)', g: guest((x) => x.name === 'guest2', 'guest2') },
  { label: 'qemu-ga 10.0 (Debian 13)', g: guest((x) => x.image === 'debian13', 'the Debian 13 guest') },
])('$label', ({ g }) => {
  const dom = g.name;
  const dir = `/tmp/qga-versions-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    await guestRun(dom, `mkdir -p ${dir}`);
  });
  afterAll(async () => {
    await guestRun(dom, `rm -rf ${dir}`).catch(() => {});
  });

  it('uploads 3 MiB byte-exact, replaces a file whole keeping its owner and mode, and downloads it back', async () => {
    const content = randomBytes(3 * 1024 * 1024 + 777);
    const path = `${dir}/data.bin`;
    await guestRun(dom, `echo old > ${path} && chown 1234:2345 ${path} && chmod 640 ${path}`);
    const r = await put(dom, path, content);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ path, bytesWritten: content.length, atomic: true });
    expect(await guestSha256(dom, path)).toBe(sha256(content));
    expect((await guestRun(dom, `stat -c '%a %u:%g' ${path}`)).trim()).toBe('640 1234:2345');
    expect((await guestRun(dom, `ls -a ${dir}`)).split('\n').filter((n) => n.includes('.qga-gateway-'))).toEqual([]);
    const back = await download(dom, path);
    expect(back.status).toBe(200);
    expect(back.headers.get('content-length')).toBe(String(content.length));
    expect(sha256(back.body)).toBe(sha256(content));
    const range = await download(dom, path, { range: 'bytes=1000-1999' });
    expect(range.status).toBe(206);
    expect(range.body.equals(content.subarray(1000, 2000))).toBe(true);
    expect((await agentFds(dom, dir)).matching).toEqual([]);
  });

  it('writes in place with ?atomic=false and appends', async () => {
    const path = `${dir}/log.txt`;
    expect((await put(dom, path, Buffer.from('one\n'), '?atomic=false')).status).toBe(200);
    expect((await put(dom, path, Buffer.from('two\n'), '?mode=append')).status).toBe(200);
    expect(await guestRun(dom, `cat ${path}`)).toBe('one\ntwo\n');
  });

  it('maps the agent errors of a download the same way: 404 missing, 403 refused, 400 directory, 416 past the end', async () => {
    const missing = await download(dom, `${dir}/no-such-file`);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body.toString())).toMatchObject({ code: 'file_not_found' });
    const denied = await download(dom, '/sys/bus/pci/rescan');
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body.toString())).toMatchObject({ code: 'permission_denied' });
    // A directory: qemu-ga 7.2 fails the read; on ext4 qemu-ga 10 seeks a directory to 2^63-1 first.
    for (const d of [dir, '/etc']) {
      const directory = await download(dom, d);
      expect(directory.status, `${d}: ${directory.body}`).toBe(400);
    }
    await guestRun(dom, `printf 12345 > ${dir}/five`);
    const past = await download(dom, `${dir}/five`, { range: 'bytes=10-20' });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe('bytes */5');
    expect((await agentFds(dom, dir)).matching).toEqual([]);
  });

  it('runs programs: output, exit code, signal, environment, stdin', async () => {
    const r = await call('POST', `/domains/${dom}/exec`, {
      path: '/bin/sh',
      args: ['-c', 'echo "out $GREETING"; cat; echo err >&2; exit 3'],
      env: { GREETING: 'hello' },
      input: { text: 'from stdin\n' },
      wait: { timeoutMs: 60_000 },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({
      exited: true,
      exitCode: 3,
      signal: null,
      stdout: { encoding: 'text', data: 'out hello\nfrom stdin\n', truncated: false },
      stderr: { encoding: 'text', data: 'err\n', truncated: false },
    });
    const killed = await call('POST', `/domains/${dom}/exec`, {
      path: '/bin/sh',
      args: ['-c', 'kill -KILL $$'],
      wait: { timeoutMs: 60_000 },
    });
    expect(killed.body).toMatchObject({ exited: true, exitCode: null, signal: 9 });
  });

  it('maps the agent errors of exec the same way: 404 no such program, 403 not executable, 404 unknown pid', async () => {
    const missing = await call('POST', `/domains/${dom}/exec`, { path: '/no/such/program', wait: { timeoutMs: 10_000 } });
    expect(missing.status, JSON.stringify(missing.body)).toBe(404);
    expect(missing.body).toMatchObject({ code: 'file_not_found' });
    await guestRun(dom, `printf 'echo ran\\n' > ${dir}/not-executable && chmod 644 ${dir}/not-executable`);
    const notExecutable = await call('POST', `/domains/${dom}/exec`, { path: `${dir}/not-executable`, wait: { timeoutMs: 10_000 } });
    expect(notExecutable.status, JSON.stringify(notExecutable.body)).toBe(403);
    expect(notExecutable.body).toMatchObject({ code: 'permission_denied' });
    // No process of that pid was ever started through the agent (qemu-ga 7.2 and 10.0 word this differently).
    const unknown = await call('GET', `/domains/${dom}/exec/999999`);
    expect(unknown.status, JSON.stringify(unknown.body)).toBe(404);
    expect(unknown.body).toMatchObject({ code: 'process_not_found' });
  });

  it('passes raw commands through and maps their errors the same way', async () => {
    const path = `/domains/${dom}/agent/commands`;
    const ok = await jsonCall(raw.url, 'POST', path, { execute: 'guest-get-host-name' });
    expect(ok.status).toBe(200);
    expect(ok.body.return).toEqual(agentCommand(dom, { execute: 'guest-get-host-name' }));
    const failed = await jsonCall(raw.url, 'POST', path, { execute: 'guest-file-open', arguments: { path: '/no/such/file', mode: 'r' } });
    expect(failed.status).toBe(502);
    expect(failed.body).toMatchObject({
      code: 'agent_error',
      command: 'guest-file-open',
      agentDesc: expect.stringMatching(/No such file or directory/),
    });
    const badArgs = await jsonCall(raw.url, 'POST', path, { execute: 'guest-get-host-name', arguments: { nonsense: 1 } });
    expect(badArgs.status, JSON.stringify(badArgs.body)).toBeGreaterThanOrEqual(400);
    expect(badArgs.status).toBeLessThan(600);
    expect(badArgs.body.code).toBeTypeOf('string');
  });
});
