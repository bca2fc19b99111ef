// Freezes that survive the gateway's death, on guest-power's real ext4 /data (qemu-ga really freezes it, and has
// no deadline of its own): a gateway SIGKILLed while it holds a freeze leaves the guest frozen; the next start,
// reading state.dir, thaws it at the deadline the first one promised, or at once when that passed meanwhile.
// A record naming a domain that no longer exists is dropped with a log line. The guest's state is read around
// the gateway (virsh qemu-agent-command guest-fsfreeze-status).
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freezeJournal } from '../../src/agent/freeze/freeze-journal.js';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { agentCommand, assertProvisioned, waitFor } from './support/guests.js';
import { ensurePowerGuestRunning, powerGuest } from './support/power.js';

const name = powerGuest.name;
const status = () => agentCommand(name, { execute: 'guest-fsfreeze-status' }) as string;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const started: GatewayProcess[] = [];

async function gateway(stateDir: string): Promise<GatewayProcess> {
  const g = await startGateway({ state: { dir: stateDir } });
  started.push(g);
  return g;
}

async function freeze(g: GatewayProcess, thawAfterMs: number): Promise<{ status: number; body: any }> {
  const res = await fetch(`${g.url}/domains/${name}/fsfreeze`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ thawAfterMs }),
  });
  return { status: res.status, body: await res.json() };
}

const records = (stateDir: string) =>
  existsSync(join(stateDir, 'freezes')) ? readdirSync(join(stateDir, 'freezes')).filter((f) => f.endsWith('.json')) : [];
const logged = (g: GatewayProcess, msg: string) => g.logs.some((l) => l.includes(`"msg":"${msg}"`));

beforeAll(async () => {
  assertProvisioned();
  await ensurePowerGuestRunning();
  const fs = agentCommand(name, { execute: 'guest-get-fsinfo' }) as { mountpoint: string; type: string }[];
  if (!fs.some((f) => f.mountpoint === '/data' && f.type === 'ext4'))
    throw new Error(`${name} has no ext4 /data: run scripts/provision-guests.sh`);
});
afterEach(async () => {
  while (started.length) await started.pop()!.stop('SIGKILL');
  // Whatever a failed test left: never leave the shared guest frozen.
  if (status() === 'frozen') agentCommand(name, { execute: 'guest-fsfreeze-thaw' });
});
afterAll(async () => {
  if (status() === 'frozen') agentCommand(name, { execute: 'guest-fsfreeze-thaw' });
});

describe('a freeze held when the gateway is SIGKILLed', () => {
  it('is thawed by the next start at its deadline, not before', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'qga-e2e-state-'));
    const first = await gateway(stateDir);
    const taken = await freeze(first, 12_000);
    expect(taken.status).toBe(200);
    expect(taken.body.status).toBe('frozen');
    const thawAt = Date.parse(taken.body.heldByGateway.autoThawAt);
    expect(records(stateDir)).toHaveLength(1);
    await first.stop('SIGKILL');
    expect(status()).toBe('frozen');

    const second = await gateway(stateDir);
    await waitFor(
      'the journal to be read',
      async () => logged(second, 'freeze journal: freeze held again until its deadline'),
      20_000,
      200,
    );
    // Held again: the gateway answers for it, and refuses what a frozen agent would (409, not the agent's error).
    const held = await (await fetch(`${second.url}/domains/${name}/fsfreeze`)).json();
    expect(held).toMatchObject({ status: 'frozen', heldByGateway: { autoThawAt: new Date(thawAt).toISOString(), blocking: true } });
    expect((await fetch(`${second.url}/domains/${name}/hostname`)).status).toBe(409);
    expect(Date.now()).toBeLessThan(thawAt);
    expect(status()).toBe('frozen');

    let thawedAt = 0;
    const thawed = async () => {
      if (status() !== 'thawed') return false;
      thawedAt = Date.now();
      return true;
    };
    await waitFor('the deadline thaw', thawed, 40_000, 250);
    expect(thawedAt).toBeGreaterThanOrEqual(thawAt - 250);
    expect(thawedAt).toBeLessThan(thawAt + 10_000);
    // The log is written asynchronously: a line may reach the pipe a moment after what it says happened.
    await waitFor('the thaw log line', async () => logged(second, 'freeze deadline passed: thawed'), 5_000, 100);
    await waitFor('the record to be removed', async () => records(stateDir).length === 0, 5_000, 100);
  });

  it('is thawed at once by the next start when its deadline passed while the gateway was down', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'qga-e2e-state-'));
    const first = await gateway(stateDir);
    expect((await freeze(first, 3_000)).body.status).toBe('frozen');
    await first.stop('SIGKILL');
    await sleep(5_000);
    // qemu-ga has no deadline of its own: nobody thawed it.
    expect(status()).toBe('frozen');
    const startedAt = Date.now();
    const second = await gateway(stateDir);
    await waitFor('the thaw at start-up', async () => status() === 'thawed', 20_000, 250);
    expect(Date.now() - startedAt).toBeLessThan(20_000);
    // The log is written asynchronously: it may reach the pipe a moment after the thaw.
    await waitFor(
      'the log line',
      async () => logged(second, 'freeze journal: deadline passed while the gateway was down; thawing now'),
      5_000,
      100,
    );
    await waitFor('the record to be removed', async () => records(stateDir).length === 0, 5_000, 100);
  });
});

describe('one gateway per state.dir', () => {
  it("refuses to start a second gateway on a directory a live one uses: it would take its records for a dead run's", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'qga-e2e-state-'));
    const first = await gateway(stateDir);
    await expect(startGateway({ state: { dir: stateDir } })).rejects.toThrow(
      new RegExp(`state.dir ${stateDir} is in use by another gateway \\(pid ${first.child.pid}\\)`),
    );
    // Its holder killed outright: the next one takes the directory over.
    await first.stop('SIGKILL');
    await gateway(stateDir);
  });
});

describe('records that name no freeze to thaw', () => {
  it('drops a record of a domain that no longer exists, with a log line, and touches no other domain', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'qga-e2e-state-'));
    const uuid = randomUUID();
    const now = Date.now();
    await freezeJournal(stateDir).put({
      id: `local/${uuid}`,
      host: 'local',
      uuid,
      name: 'deleted-vm',
      domId: 42,
      mountpoints: null,
      frozenAt: new Date(now).toISOString(),
      thawAt: new Date(now + 60_000).toISOString(),
    });
    expect(records(stateDir)).toHaveLength(1);
    const g = await gateway(stateDir);
    await waitFor(
      'the record to be dropped, and the log line saying so',
      async () => records(stateDir).length === 0 && logged(g, 'freeze journal: record dropped'),
      20_000,
      200,
    );
    const line = g.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'freeze journal: record dropped');
    expect(line).toMatchObject({ uuid, domain: 'deleted-vm', why: 'the domain no longer exists' });
    expect(logged(g, 'freeze deadline passed: thawed')).toBe(false);
  });

  it('never thaws a freeze the gateway did not take (none in its journal)', async () => {
    agentCommand(name, { execute: 'guest-fsfreeze-freeze' });
    try {
      const stateDir = mkdtempSync(join(tmpdir(), 'qga-e2e-state-'));
      const g = await gateway(stateDir);
      await sleep(3_000);
      expect(status()).toBe('frozen');
      const held = await (await fetch(`${g.url}/domains/${name}/fsfreeze`)).json();
      expect(held).toMatchObject({ status: 'frozen', heldByGateway: null });
    } finally {
      agentCommand(name, { execute: 'guest-fsfreeze-thaw' });
    }
  });
});
