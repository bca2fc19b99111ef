// A real systemd guest (debian13) going away under the gateway: a reboot through the gateway with the agent coming
// back; qemu-ga restarted by systemd in the middle of a request; a reboot in the middle of a download. Watched
// around the gateway (virsh: boot id, guest-ping, qemu-ga's open descriptors). The guest is left running, its agent
// answering, with no test file left in it.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { agentFds, guestSha256 } from './support/files.js';
import { agentCommand, virsh, waitFor } from './support/guests.js';
import { bootId } from './support/power.js';
import {
  DOM,
  DOMAIN_REF,
  SECOND,
  absBig,
  agentAnswers,
  assertDebian13,
  call as callGateway,
  deb,
  ensureDebian13Up,
  hostNs,
  rawTimeNs,
  sh,
} from './support/debian13.js';

let gw: GatewayProcess;
const call = (method: string, path: string, body?: unknown) => callGateway(gw.url, method, `/domains/${DOM}${path}`, body);
const gatewayReachesAgent = async () => (await call('GET', '/agent/ping?timeoutMs=3000')).status === 200;
const tag = randomBytes(4).toString('hex');
const BIG = `/var/tmp/qga-e2e-download-${tag}.bin`;
const SIZE = 20 * 1024 * 1024;

beforeAll(async () => {
  await assertDebian13();
  gw = await startGateway();
});
afterAll(async () => {
  // Whatever happened: the guest back up, its agent answering, the test file gone.
  await ensureDebian13Up();
  await sh(`rm -f ${BIG}`).catch(() => {});
  await gw?.stop();
});

describe('debian13 rebooted or its agent restarted', () => {
  it('POST /power reboot: 202, the guest boots again (new boot id), its agent comes back and routes work again', async () => {
    const before = bootId(DOM);
    const r = await call('POST', '/power', { action: 'reboot' });
    expect(r.status).toBe(202);
    expect(r.headers.get('location')).toBe(`/domains/${deb.uuid}`);
    expect(r.body).toMatchObject({
      domain: DOMAIN_REF,
      action: 'reboot',
      command: 'guest-shutdown',
      accepted: true,
      expect: { state: 'running' },
    });
    // Boot to agent takes about 25-30 s under TCG, plus the shutdown.
    await waitFor('debian13 to boot again (new boot id)', async () => agentAnswers() && bootId(DOM) !== before, 240_000, 2000);
    await waitFor('the gateway to reach the new agent', gatewayReachesAgent, 60_000, 1000);

    const os = await call('GET', '/os');
    expect(os.status).toBe(200);
    const raw = agentCommand(DOM, { execute: 'guest-get-osinfo' }) as Record<string, string>;
    expect(os.body.os).toMatchObject({
      id: 'debian',
      versionId: raw['version-id'],
      kernelRelease: raw['kernel-release'],
      kernelVersion: raw['kernel-version'],
      prettyName: raw['pretty-name'],
    });
    const domain = await call('GET', '');
    expect(domain.body).toMatchObject({ name: DOM, state: 'running', agentState: 'connected' });
    // The guest has just booted, and took its clock from the RTC: right.
    expect(Number((await sh('cut -d. -f1 /proc/uptime')).trim())).toBeLessThan(600);
    expect(absBig(rawTimeNs() - hostNs())).toBeLessThan(10n * SECOND);
  }, 360_000);

  it('qemu-ga restarted by systemd while POST /exec waits: that request answers 503/504 problem+json, the next ones succeed', async () => {
    const mainPid = (await sh('systemctl show -p MainPID --value qemu-guest-agent')).trim();
    // A unique duration names the program in the guest's process list.
    const seconds = `40.${parseInt(tag, 16) % 1000}`;
    // From a transient unit, outside the agent's cgroup: the restart kills everything the agent started.
    const unit = `qga-e2e-restart-${tag}`;
    await sh(`systemd-run --unit=${unit} --collect --quiet /bin/sh -c 'sleep 3; systemctl restart qemu-guest-agent'`);
    const started = Date.now();
    const r = await call('POST', '/exec', { path: '/bin/sleep', args: [seconds], wait: { timeoutMs: 60_000 } });
    const took = Date.now() - started;
    expect([503, 504], JSON.stringify(r.body)).toContain(r.status);
    expect(r.type).toMatch(/^application\/problem\+json/);
    expect(r.body).toMatchObject({ status: r.status, domain: DOM });
    expect(['agent_not_connected', 'agent_unresponsive', 'deadline_exceeded']).toContain(r.body.code);
    // It ended with the agent, not with the program (40 s) nor the wait (60 s).
    expect(took).toBeLessThan(30_000);

    // The next requests succeed once the agent is back.
    await waitFor('the gateway to reach the restarted agent', async () => (await call('GET', '/hostname')).status === 200, 60_000, 500);
    const hostname = await call('GET', '/hostname');
    expect(hostname.body).toEqual({
      domain: DOMAIN_REF,
      hostname: (agentCommand(DOM, { execute: 'guest-get-host-name' }) as { 'host-name': string })['host-name'],
    });
    // systemd really restarted it, and the program died with it.
    expect((await sh('systemctl show -p MainPID --value qemu-guest-agent')).trim()).not.toBe(mainPid);
    expect((await sh(`pgrep -f '^/bin/sleep ${seconds}$' || true`)).trim()).toBe('');
    // The restarted agent knows no such process: the documented 404.
    const line = [...gw.logs].reverse().find((l) => l.includes('"msg":"guest process started"') && l.includes('"path":"/bin/sleep"'));
    const pid = (JSON.parse(line!) as { pid: number }).pid;
    const status = await call('GET', `/exec/${pid}`);
    expect(status.status, JSON.stringify(status.body)).toBe(404);
    expect(status.body.code).toBe('process_not_found');
    // And a program runs again.
    const again = await call('POST', '/exec', { path: '/bin/echo', args: ['back'], wait: { timeoutMs: 30_000 } });
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ exited: true, exitCode: 0, stdout: { data: 'back\n' } });
  }, 180_000);

  it('a reboot in the middle of a 20 MiB download: the body ends short with an error; no handle is left and the next download is whole', async () => {
    await sh(`head -c ${SIZE} /dev/urandom > ${BIG} && sync`, 120_000);
    const sha = await guestSha256(DOM, BIG);
    expect((await agentFds(DOM, BIG)).matching).toEqual([]);
    const before = bootId(DOM);
    const { port, hostname } = new URL(gw.url);
    const path = `/domains/${DOM}/files${BIG}`;

    let received = 0;
    let rebooted = false;
    const outcome = await new Promise<{ status?: number; length?: string; complete: boolean; error?: string }>((resolve) => {
      let status: number | undefined;
      let length: string | undefined;
      let error: string | undefined;
      const req = http.get({ host: hostname, port, path, agent: false }, (res) => {
        status = res.statusCode;
        length = res.headers['content-length'];
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received < 1024 * 1024 || rebooted) return;
          // Hold the download (the gateway reads no further than the socket takes), reboot the guest around the
          // gateway, and go on reading once its agent is gone.
          rebooted = true;
          res.pause();
          void (async () => {
            virsh('reboot', '--mode', 'agent', DOM);
            await waitFor('the guest agent to go away', async () => !agentAnswers(2), 120_000, 500).catch(() => {});
            res.resume();
          })();
        });
        res.on('error', (err) => (error = err.message));
        res.on('close', () => resolve({ status, length, complete: res.complete, error }));
      });
      req.on('error', (err) => {
        error ??= err.message;
        if (status === undefined) resolve({ complete: false, error });
      });
    });
    expect(rebooted).toBe(true);
    // The answer had started (200 with the whole length announced), then ended short: not a complete-looking body.
    expect(outcome.status).toBe(200);
    expect(outcome.length).toBe(String(SIZE));
    expect(outcome.complete).toBe(false);
    expect(outcome.error).toBeDefined();
    expect(received).toBeLessThan(SIZE);

    await waitFor('debian13 to boot again (new boot id)', async () => agentAnswers() && bootId(DOM) !== before, 240_000, 2000);
    await waitFor('the gateway to reach the new agent', gatewayReachesAgent, 60_000, 1000);
    // No handle open in the guest's qemu-ga.
    expect((await agentFds(DOM, BIG)).matching).toEqual([]);

    // The next download is whole and exact.
    const whole = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      http
        .get({ host: hostname, port, path, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        })
        .on('error', reject);
    });
    expect(whole.status).toBe(200);
    expect(whole.body.length).toBe(SIZE);
    expect(createHash('sha256').update(whole.body).digest('hex')).toBe(sha);
    expect((await agentFds(DOM, BIG)).matching).toEqual([]);
    await sh(`rm -f ${BIG}`);
  }, 420_000);
});
