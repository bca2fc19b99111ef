// File-system freeze and fstrim for real on guest-power. Its root is an initramfs (rootfs), which cannot be
// frozen or trimmed, but it has a data disk (guests.json "dataDisk": true): an ext4 file system on a virtio
// disk mounted at /data, which qemu-ga really freezes and trims. Tested here: a real freeze (the guest's
// writers block, other commands get 409) and the deadline thaw the gateway runs with no client call, seen
// through virsh; freeze-list of /data and of the unfreezable /; the thaw at graceful shutdown; the errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { agentCommand, assertProvisioned, waitFor } from './support/guests.js';
import { ensurePowerGuestRunning, powerGuest } from './support/power.js';

let gw: GatewayProcess;
const name = powerGuest.name;

/** The guest's freeze state, read around the gateway. */
const virshFreezeStatus = () => agentCommand(name, { execute: 'guest-fsfreeze-status' }) as string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a busybox sh script in guest-power through virsh (never the gateway) and returns its stdout. */
async function guestShell(script: string): Promise<string> {
  const { pid } = agentCommand(name, {
    execute: 'guest-exec',
    arguments: { path: '/bin/sh', arg: ['-c', script], 'capture-output': true },
  }) as { pid: number };
  for (let i = 0; i < 100; i++) {
    const st = agentCommand(name, { execute: 'guest-exec-status', arguments: { pid } }) as {
      exited: boolean;
      exitcode?: number;
      'out-data'?: string;
    };
    if (st.exited) {
      if (st.exitcode !== 0) throw new Error(`guest script exited with ${st.exitcode}: ${script}`);
      return Buffer.from(st['out-data'] ?? '', 'base64').toString('utf8');
    }
    await sleep(100);
  }
  throw new Error(`guest script did not finish: ${script}`);
}

/**
 * Starts, in the background of the guest, a writer that rewrites /data/writer.txt up to 40 times, 0.2 s apart
 * (stopping after a write that took 1 s or more), then puts into RESULT the longest single write in
 * centiseconds: a real freeze holds a write for about as long as the freeze lasts; unfrozen, a write takes a
 * few centiseconds. Returns right away (before the first write).
 */
async function startWriter(result: string): Promise<void> {
  const loop =
    `i=0; max=0; while [ $i -lt 40 ]; do a=$(cut -d' ' -f1 /proc/uptime | tr -d .); echo $i > /data/writer.txt; ` +
    `b=$(cut -d' ' -f1 /proc/uptime | tr -d .); d=$((b - a)); [ $d -gt $max ] && max=$d; [ $max -ge 100 ] && break; sleep 0.2; ` +
    `i=$((i + 1)); done; echo $max > ${result}`;
  await guestShell(`rm -f ${result}; (${loop}) </dev/null >/dev/null 2>&1 &`);
}

/** Waits for the writer's RESULT (centiseconds), reading it through virsh. */
async function writerResult(result: string): Promise<number> {
  let out = '';
  await waitFor(
    `the guest writer's ${result}`,
    async () => {
      out = await guestShell(`cat ${result} 2>/dev/null || true`);
      return out.trim() !== '';
    },
    60_000,
    1000,
  );
  return Number(out.trim());
}

/** The "msg" lines the gateway logged for guest-power. */
const logLines = (g: GatewayProcess, msg: string) =>
  g.logs
    .filter((l) => l.includes(`"msg":"${msg}"`) && l.includes(`"domain":"${name}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

const logged = (g: GatewayProcess, msg: string) => g.logs.some((l) => l.includes(`"msg":"${msg}"`) && l.includes(`"domain":"${name}"`));

beforeAll(async () => {
  assertProvisioned();
  await ensurePowerGuestRunning();
  // The data disk is what makes a real freeze possible: fail loudly if the guest was provisioned without it.
  const fs = agentCommand(name, { execute: 'guest-get-fsinfo' }) as { mountpoint: string; type: string }[];
  if (!fs.some((f) => f.mountpoint === '/data' && f.type === 'ext4')) {
    throw new Error(`${name} has no ext4 /data (guests.json "dataDisk"): run scripts/provision-guests.sh`);
  }
  gw = await startGateway();
});
afterAll(async () => {
  try {
    await gw?.stop();
  } finally {
    // Whatever happened, leave the guest thawed (a frozen /data hangs its writers).
    agentCommand(name, { execute: 'guest-fsfreeze-thaw' });
  }
});

describe('fsfreeze on guest-power', () => {
  it('reports thawed, held by nobody', async () => {
    const r = await call('GET', `/domains/${name}/fsfreeze`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ domain: { host: 'local', name, uuid: powerGuest.uuid }, status: 'thawed', heldByGateway: null });
  });

  it('freeze: /data really freezes (writers block, other commands get 409); the deadline thaw runs with no client call', async () => {
    const writer = '/tmp/qga-e2e-writer-deadline';
    await startWriter(writer);
    const before = Date.now();
    const r = await call('POST', `/domains/${name}/fsfreeze`, { thawAfterMs: 3000 });
    expect(r.status).toBe(200);
    expect(r.body.frozenFileSystems).toBeGreaterThanOrEqual(1);
    expect(r.body).toMatchObject({
      domain: { host: 'local', name, uuid: powerGuest.uuid },
      status: 'frozen',
      heldByGateway: { mountpoints: null, blocking: true },
    });
    const autoThawAt = Date.parse(r.body.heldByGateway.autoThawAt);
    expect(autoThawAt).toBeGreaterThanOrEqual(before + 3000);
    expect(autoThawAt).toBeLessThanOrEqual(Date.now() + 3000);
    // Frozen for real, as the agent itself says (through virsh, not the gateway).
    expect(virshFreezeStatus()).toBe('frozen');
    const during = await call('GET', `/domains/${name}/fsfreeze`);
    expect(during.status).toBe(200);
    expect(during.body).toMatchObject({
      status: 'frozen',
      heldByGateway: { autoThawAt: r.body.heldByGateway.autoThawAt, mountpoints: null, blocking: true },
    });
    // Other commands are refused while frozen.
    const other = await call('GET', `/domains/${name}/network-interfaces`);
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('state_conflict');
    // No client call from here on: the gateway thaws by itself when the deadline passes. Watched through virsh.
    await waitFor('guest-power thawed by the gateway', async () => virshFreezeStatus() === 'thawed', 30_000, 200);
    expect(Date.now()).toBeGreaterThanOrEqual(autoThawAt - 50);
    await waitFor('the deadline thaw log line', async () => logLines(gw, 'freeze deadline passed: thawed').length > 0, 10_000, 100);
    expect(logLines(gw, 'freeze deadline passed: thawed')[0]!.count).toBeGreaterThanOrEqual(1);
    // A write to /data was held by the freeze (about 3 s; at least 1 s even on a slow host).
    expect(await writerResult(writer)).toBeGreaterThanOrEqual(100);
    const after = await call('GET', `/domains/${name}/fsfreeze`);
    expect(after.body).toMatchObject({ status: 'thawed', heldByGateway: null });
    expect((await call('GET', `/domains/${name}/network-interfaces`)).status).toBe(200);
  });

  it('freeze-list ["/data"] freezes that file system; DELETE thaws it', async () => {
    const r = await call('POST', `/domains/${name}/fsfreeze`, { mountpoints: ['/data'], thawAfterMs: 60_000 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ frozenFileSystems: 1, status: 'frozen', heldByGateway: { mountpoints: ['/data'], blocking: true } });
    expect(virshFreezeStatus()).toBe('frozen');
    expect((await call('GET', `/domains/${name}/network-interfaces`)).body.code).toBe('state_conflict');
    const thawed = await call('DELETE', `/domains/${name}/fsfreeze`);
    expect(thawed.status).toBe(200);
    expect(thawed.body).toEqual({ domain: { host: 'local', name, uuid: powerGuest.uuid }, thawedFileSystems: 1, status: 'thawed' });
    expect(virshFreezeStatus()).toBe('thawed');
    expect((await call('GET', `/domains/${name}/fsfreeze`)).body).toMatchObject({ status: 'thawed', heldByGateway: null });
  });

  it('freeze-list: a listed mount point that cannot be frozen (the initramfs root) counts 0; a second freeze while held is 409; DELETE thaws', async () => {
    const r = await call('POST', `/domains/${name}/fsfreeze`, { mountpoints: ['/'], thawAfterMs: 60_000 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ frozenFileSystems: 0, status: 'thawed', heldByGateway: { mountpoints: ['/'], blocking: false } });
    // Nothing frozen, so other commands still pass.
    expect((await call('GET', `/domains/${name}/network-interfaces`)).status).toBe(200);
    const again = await call('POST', `/domains/${name}/fsfreeze`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('state_conflict');
    const thawed = await call('DELETE', `/domains/${name}/fsfreeze`);
    expect(thawed.status).toBe(200);
    expect(thawed.body).toEqual({ domain: { host: 'local', name, uuid: powerGuest.uuid }, thawedFileSystems: 0, status: 'thawed' });
    expect((await call('GET', `/domains/${name}/fsfreeze`)).body.heldByGateway).toBeNull();
  });

  it('refuses a freeze longer than the configured maximum, and bad mount points', async () => {
    expect((await call('POST', `/domains/${name}/fsfreeze`, { thawAfterMs: 300_001 })).status).toBe(400);
    expect((await call('POST', `/domains/${name}/fsfreeze`, { mountpoints: ['relative'] })).status).toBe(400);
    expect((await call('GET', `/domains/${name}/fsfreeze`)).body.heldByGateway).toBeNull();
  });

  it('a graceful shutdown thaws what the gateway froze', async () => {
    const other = await startGateway();
    try {
      const res = await fetch(`${other.url}/domains/${name}/fsfreeze`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ thawAfterMs: 300_000 }),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { status: string }).status).toBe('frozen');
      expect(virshFreezeStatus()).toBe('frozen');
    } finally {
      expect(await other.stop('SIGTERM')).toBe(0);
    }
    expect(logged(other, 'shutting down: thawed')).toBe(true);
    expect(logLines(other, 'shutting down: thawed')[0]!.count).toBeGreaterThanOrEqual(1);
    expect(virshFreezeStatus()).toBe('thawed');
  });

  it('answers 503 for a guest without an agent, 409 for a stopped one', async () => {
    expect((await call('POST', '/domains/guest-noagent/fsfreeze')).body.code).toBe('agent_not_configured');
    expect((await call('GET', '/domains/guest-stopped/fsfreeze')).body.code).toBe('domain_not_running');
  });
});

describe('fstrim on guest-power', () => {
  it('answers the paths qemu-ga trimmed: /data (a discard-capable disk), never the initramfs root', async () => {
    const r = await call('POST', `/domains/${name}/fstrim`, { minimumBytes: 0 });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      domain: { host: 'local', name, uuid: powerGuest.uuid },
      // ext4 remembers what it trimmed since the mount: the first trim after boot gives bytes, later ones 0.
      paths: [{ path: '/data', trimmedBytes: expect.any(Number), minimumBytes: 0, error: null }],
    });
  });
});
