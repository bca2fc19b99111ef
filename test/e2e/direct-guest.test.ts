// A real tiny guest started by qemu-system-x86_64 directly (scripts/direct-guests.sh, no libvirt), its agent on
// a socket chardev, served beside the libvirt guests by the agent-socket backend: the same checks as for
// libvirt's guests (network interfaces, files, exec), plus the channel's own: a command whose deadline passed
// while the agent was stopped must never have its late reply taken as the answer to the next command.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { assertProvisioned, guest } from './support/guests.js';

interface DirectGuest {
  name: string;
  mac: string;
  ip: string;
  socket: string;
}
const direct: DirectGuest = (JSON.parse(readFileSync(new URL('./direct-guests.json', import.meta.url), 'utf8')) as DirectGuest[])[0]!;
const socketDir = direct.socket.slice(0, direct.socket.lastIndexOf('/'));
const g1 = guest((g) => g.name === 'guest1', 'guest1');
let gw: GatewayProcess;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function run(script: string): Promise<{ exitCode: number; stdout: string }> {
  const r = await call('POST', `/domains/${direct.name}/exec`, { path: '/bin/sh', args: ['-c', script], wait: { timeoutMs: 30_000 } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return { exitCode: r.body.exitCode, stdout: r.body.stdout?.data ?? '' };
}

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway({ agentSockets: { host: 'direct', directories: [{ glob: `${socketDir}/*.qga` }] } });
});
afterAll(async () => {
  await gw?.stop();
});

describe(`a guest without libvirt (${direct.name}, qemu-system-x86_64 with a socket chardev)`, () => {
  it('is listed beside the libvirt guests with its host and backend, and GET /hosts shows the agent sockets', async () => {
    const { status, body } = await call('GET', '/domains');
    expect(status).toBe(200);
    const d = body.domains.find((x: { name: string }) => x.name === direct.name);
    expect(d).toMatchObject({ host: 'direct', backend: 'agent-socket', state: 'running', id: null, agentChannel: true });
    expect(body.domains.find((x: { name: string }) => x.name === g1.name)).toMatchObject({ host: 'local', backend: 'libvirt' });
    const hosts = await call('GET', '/hosts');
    expect(hosts.body.hosts).toContainEqual(
      expect.objectContaining({ name: 'direct', backend: 'agent-socket', transport: 'agent-socket', state: 'up' }),
    );
    expect((await call('GET', `/domains/direct:${direct.name}`)).body.uuid).toBe(d.uuid);
  });

  it("reports the guest's real MAC and IP", async () => {
    const { status, body } = await call('GET', `/domains/${direct.name}/network-interfaces`);
    expect(status).toBe(200);
    expect(body.domain).toMatchObject({ host: 'direct', name: direct.name });
    const eth = body.interfaces.find((n: { mac: string | null }) => n.mac === direct.mac);
    const [ip, prefix] = direct.ip.split('/');
    expect(eth.addresses).toContainEqual({ family: 'ipv4', address: ip, prefix: Number(prefix) });
    // And the agent info says which qemu-ga answered.
    const agent = await call('GET', `/domains/${direct.name}/agent`);
    expect(agent.body.version).toMatch(/^\d+\.\d+/);
  });

  it('downloads a guest file, uploads one and reads it back byte for byte (sha256 checked in the guest)', async () => {
    const hello = await fetch(`${gw.url}/domains/${direct.name}/files/srv/qga-test/hello.txt`);
    expect(hello.status).toBe(200);
    expect(await hello.text()).toBe(`hello from ${direct.name}\n`);
    const range = await fetch(`${gw.url}/domains/${direct.name}/files/srv/qga-test/hello.txt`, { headers: { range: 'bytes=0-4' } });
    expect(range.status).toBe(206);
    expect(await range.text()).toBe('hello');

    const content = randomBytes(300_000 + 17);
    const put = await fetch(`${gw.url}/domains/${direct.name}/files/tmp/direct-upload.bin`, {
      method: 'PUT',
      body: content,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(put.status).toBe(200);
    expect(((await put.json()) as { bytesWritten: number }).bytesWritten).toBe(content.length);
    const back = Buffer.from(await (await fetch(`${gw.url}/domains/${direct.name}/files/tmp/direct-upload.bin`)).arrayBuffer());
    expect(back.equals(content)).toBe(true);
    const sum = await run('sha256sum /tmp/direct-upload.bin; rm -f /tmp/direct-upload.bin');
    expect(sum.stdout.split(' ')[0]).toBe(createHash('sha256').update(content).digest('hex'));
  });

  it('runs a program and answers its output and exit code', async () => {
    const r = await call('POST', `/domains/${direct.name}/exec`, {
      path: '/bin/sh',
      args: ['-c', 'echo out; echo err >&2; exit 3'],
      wait: { timeoutMs: 30_000 },
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      exited: true,
      exitCode: 3,
      stdout: { encoding: 'text', data: 'out\n' },
      stderr: { encoding: 'text', data: 'err\n' },
    });
    expect((await call('POST', `/domains/${direct.name}/exec`, { path: '/no/such/program' })).body.code).toBe('file_not_found');
  });

  it('diagnoses the channel: guest-sync-delimited and guest-sync round trips, in step', async () => {
    for (const command of ['guest-sync-delimited', 'guest-sync']) {
      const r = await call('POST', `/domains/${direct.name}/agent/sync`, { command });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ backend: 'agent-socket', command, inStep: true, staleReplies: 0 });
    }
    // Without a body: the socket's default. Through libvirt: guest-sync only (the 0xFF would break libvirt's channel).
    expect((await call('POST', `/domains/${direct.name}/agent/sync`)).body).toMatchObject({
      command: 'guest-sync-delimited',
      inStep: true,
    });
    const viaLibvirt = await call('POST', `/domains/${g1.name}/agent/sync`, {});
    expect(viaLibvirt.body).toMatchObject({ backend: 'libvirt', command: 'guest-sync', inStep: true, discardedBytes: 0 });
    const refused = await call('POST', `/domains/${g1.name}/agent/sync`, { command: 'guest-sync-delimited' });
    expect(refused.status).toBe(400);
    expect((await call('GET', `/domains/${g1.name}/agent/ping`)).status).toBe(200);
  });

  it('a deadline passed while the agent was stopped: 504, and its late reply is never taken as the next answer', async () => {
    // Stop qemu-ga inside the guest for 4 s, one second from now (the exec must get its own reply first).
    await run(
      '(sleep 1; for p in $(pidof qemu-ga); do kill -STOP $p; done; sleep 4; for p in $(pidof qemu-ga); do kill -CONT $p; done) >/dev/null 2>&1 &',
    );
    await new Promise((r) => setTimeout(r, 1500));
    const late = await call('GET', `/domains/${direct.name}/network-interfaces?timeoutMs=1500`);
    expect(late.status).toBe(504);
    expect(late.body.code).toBe('deadline_exceeded');
    // Once qemu-ga runs again it answers the interfaces command: that reply must be discarded.
    let hostname: { status: number; body: any } | null = null;
    for (let i = 0; i < 40; i++) {
      hostname = await call('GET', `/domains/${direct.name}/hostname?timeoutMs=2000`);
      if (hostname.status === 200) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(hostname!.status).toBe(200);
    expect(hostname!.body.hostname).toBe(direct.name);
    const nics = await call('GET', `/domains/${direct.name}/network-interfaces`);
    expect(nics.status).toBe(200);
    expect(Array.isArray(nics.body.interfaces)).toBe(true);
  });

  it('reboot: 202 without waiting for a reply; the guest boots again (new boot id) and the channel resynchronises', async () => {
    const bootId = async () => (await (await fetch(`${gw.url}/domains/${direct.name}/files/proc/sys/kernel/random/boot_id`)).text()).trim();
    const before = await bootId();
    const r = await call('POST', `/domains/${direct.name}/power`, { action: 'reboot' });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ action: 'reboot', command: 'guest-shutdown', expect: { state: 'running', lifecycleEvents: [] } });
    let after = before;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      const ping = await call('GET', `/domains/${direct.name}/agent/ping?timeoutMs=3000`);
      if (ping.status === 200) {
        after = await bootId();
        if (after !== before) break;
      }
      await new Promise((res) => setTimeout(res, 1000));
    }
    expect(after).toMatch(/^[0-9a-f-]{36}$/);
    expect(after).not.toBe(before);
    expect((await call('GET', `/domains/${direct.name}/hostname`)).body.hostname).toBe(direct.name);
  });
});
