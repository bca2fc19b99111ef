// Every typed resource through the whole gateway against a real qemu-ga running on the host in unix-listen mode
// (no VM, no libvirt), with every command that could change the host blocked: what the agent allows answers
// from the host's own view, what it blocks answers 501 without being sent.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST_QGA_VERSIONS, startHostQga, type HostQga } from '../support/host-qga.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';

describe.each(HOST_QGA_VERSIONS)('qemu-ga %s on the host', (version) => {
  let qga: HostQga;
  let gw: TestGateway;

  async function get(url: string, method = 'GET', payload?: object) {
    const res = await gw.app.inject({ method: method as 'GET', url, ...(payload ? { payload } : {}) });
    return {
      status: res.statusCode,
      body: res.headers['content-type']?.toString().includes('json') ? res.json() : res.body,
      headers: res.headers,
    };
  }

  beforeAll(async () => {
    qga = await startHostQga({ restartOnExit: true, version });
    gw = await startTestGateway('qemu:///system', {
      libvirt: { enabled: false },
      agentSockets: { sockets: [{ name: 'hostqga', path: qga.path }] },
    });
  });
  afterAll(async () => {
    await gw?.close();
    await qga?.stop();
  });

  describe('the gateway against qemu-ga on the host (agent socket, no libvirt)', () => {
    it('lists the domain and its agent: version and commands, blocked ones disabled', async () => {
      const d = await get('/domains/hostqga');
      expect(d.body).toMatchObject({ host: 'direct', backend: 'agent-socket', state: 'running' });
      const agent = await get('/domains/hostqga/agent');
      expect(agent.status).toBe(200);
      expect(agent.body.version).toBe(qga.version);
      const byName = Object.fromEntries(agent.body.commands.map((c: { name: string; enabled: boolean }) => [c.name, c.enabled]));
      expect(byName['guest-exec']).toBe(false);
      expect(byName['guest-get-osinfo']).toBe(true);
    });

    it.each([
      ['/agent/ping', (b: any) => expect(b.ok).toBe(true)],
      ['/hostname', (b: any) => expect(b.hostname).toBe(hostname())],
      ['/network-interfaces', (b: any) => expect(b.interfaces.map((n: { name: string }) => n.name)).toContain('lo')],
      ['/os', (b: any) => expect(b.os.kernelRelease).toBe(readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim())],
      ['/timezone', (b: any) => expect(typeof b.offsetSeconds).toBe('number')],
      ['/users', (b: any) => expect(Array.isArray(b.users)).toBe(true)],
      ['/filesystems', (b: any) => expect(b.filesystems.length).toBeGreaterThan(0)],
      ['/disks', (b: any) => expect(Array.isArray(b.disks)).toBe(true)],
      ['/disk-stats', (b: any) => expect(Array.isArray(b.disks)).toBe(true)],
      ['/cpu-stats', (b: any) => expect(b.cpus.length).toBeGreaterThan(0)],
      ['/time', (b: any) => expect(Math.abs(Date.parse(b.time.iso) - Date.now())).toBeLessThan(60_000)],
      ['/vcpus', (b: any) => expect(b.vcpus.length).toBeGreaterThan(0)],
      ['/memory-blocks', (b: any) => expect(Array.isArray(b.blocks)).toBe(true)],
      ['/fsfreeze', (b: any) => expect(b.status).toBe('thawed')],
    ])('GET %s answers from the host', async (path, check) => {
      const r = await get(`/domains/hostqga${path}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      check(r.body);
    });

    it('GET /load: the load averages from qemu-ga 10.0 (load1m, load5m, load15m in its reply), 501 before it', async () => {
      const r = await get('/domains/hostqga/load');
      if (version === '7.2') {
        expect(r.status).toBe(501);
        expect(r.body.code).toBe('command_not_supported');
        return;
      }
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const [one, five, fifteen] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
      // The kernel's figures moments apart: close, not equal.
      expect(Math.abs(r.body.load1 - one!)).toBeLessThan(2);
      expect(Math.abs(r.body.load5 - five!)).toBeLessThan(2);
      expect(Math.abs(r.body.load15 - fifteen!)).toBeLessThan(2);
    });

    it('GET /routes: the routing table from qemu-ga 9.1 and later, 501 before it', async () => {
      const r = await get('/domains/hostqga/routes');
      if (version === '7.2') {
        expect(r.status).toBe(501);
        expect(r.body.code).toBe('command_not_supported');
        return;
      }
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const kernelV4 = readFileSync('/proc/net/route', 'utf8').trim().split('\n').length - 1;
      expect(r.body.routes.filter((x: { destination: string }) => !x.destination.includes(':')).length).toBe(kernelV4);
    });

    it('GET /routes: IPv6 flags and metric as the kernel has them (qemu-ga 10.0 sends them sign-extended or negative)', async () => {
      if (version === '7.2') return;
      // /proc/net/ipv6_route: dest plen src plen nexthop metric refcnt use flags iface, in hex.
      const kernel = readFileSync('/proc/net/ipv6_route', 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/));
      const r = await get('/domains/hostqga/routes');
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const v6 = (
        r.body.routes as { ipVersion: number; interface: string; destinationPrefixLength: string; metric: number; flags: number }[]
      ).filter((x) => x.ipVersion === 6);
      expect(v6.length).toBe(kernel.length);
      const got = v6.map((x) => `${x.interface} /${x.destinationPrefixLength} ${x.metric} ${x.flags}`).sort();
      const want = kernel.map((k) => `${k[9]} /${parseInt(k[1]!, 16)} ${parseInt(k[5]!, 16)} ${parseInt(k[8]!, 16)}`).sort();
      expect(got).toEqual(want);
    });

    it('HEAD and GET of a directory: 400 (the agent seeks an ext4 directory to 2^63 - 1, then cannot read it)', async () => {
      const head = await gw.app.inject({ method: 'HEAD', url: '/domains/hostqga/files/etc' });
      expect(head.statusCode).toBe(400);
      const r = await get('/domains/hostqga/files/etc');
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ code: 'invalid_request', agentDesc: 'failed to read file: Is a directory' });
    });

    it('GET /time: the nanoseconds exactly as the agent sent them (whole microseconds)', async () => {
      const r = await get('/domains/hostqga/time');
      expect(r.status).toBe(200);
      expect(BigInt(r.body.time.ns) % 1000n).toBe(0n);
    });

    it("downloads a host file byte for byte, with HEAD's size and a range", async () => {
      const want = readFileSync('/etc/os-release');
      const r = await get('/domains/hostqga/files/etc/os-release');
      expect(r.status).toBe(200);
      expect(Buffer.from(r.body as string).equals(want)).toBe(true);
      const head = await gw.app.inject({ method: 'HEAD', url: '/domains/hostqga/files/etc/os-release' });
      expect(head.headers['content-length']).toBe(String(want.length));
      const range = await gw.app.inject({ method: 'GET', url: '/domains/hostqga/files/etc/os-release', headers: { range: 'bytes=2-5' } });
      expect(range.statusCode).toBe(206);
      expect(range.rawPayload.equals(want.subarray(2, 6))).toBe(true);
      expect((await get('/domains/hostqga/files/no/such/file')).status).toBe(404);
    });

    it.each([
      ['POST', '/exec', { path: '/bin/true' }],
      ['PUT', '/files/tmp/qgw-never-written', undefined],
      ['POST', '/power', { action: 'shutdown' }],
      ['POST', '/fsfreeze', {}],
    ])('%s %s: blocked on the agent, 501 and never sent', async (method, path, payload) => {
      const r = await get(`/domains/hostqga${path}`, method, payload);
      expect(r.status, JSON.stringify(r.body)).toBe(501);
      expect(r.body.code).toBe('command_not_supported');
    });

    it('diagnoses the channel with both syncs, in step', async () => {
      for (const command of ['guest-sync-delimited', 'guest-sync']) {
        const r = await get('/domains/hostqga/agent/sync', 'POST', { command });
        expect(r.status).toBe(200);
        expect(r.body).toMatchObject({ command, inStep: true });
      }
    });
  });
});
