// The freeze journal through the whole gateway against the fake libvirtd: a freeze is recorded in state.dir before
// guest-fsfreeze-freeze is sent (and refused with 503 when it cannot be), its record goes with every release, and
// a gateway that starts with records left by a previous run holds those freezes again and thaws them at their
// deadline (at once when it passed), dropping those whose domain is gone, stopped or restarted since.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freezeJournal, freezeRecordSchema, type FreezeRecord } from '../../src/agent/freeze/freeze-journal.js';
import { RemoteProc } from '../../src/libvirt/procedures.js';
import { LifecycleEvent } from '../../src/libvirt/protocol.js';
import { DomainState, waitFor, type AgentHandler, type FakeLibvirtd } from '../support/fake-libvirtd.js';
import { operationsAgent, type OperationsAgent } from '../support/operations-agent.js';
import { build, request, type Harness, type Method } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';

let h: Harness;
let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;
let agent: OperationsAgent;
/** When each agent command reached the fake agent (ms since the epoch), in order. */
let arrivals: { execute: string; at: number }[] = [];
const dirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'qga-freeze-journal-'));
  dirs.push(d);
  return d;
}

/** The fake libvirtd with vm1 running and the scripted agent; `observe` sees each command before the agent answers. */
async function startFake(observe?: (cmd: string) => void) {
  agent = operationsAgent();
  arrivals = [];
  const inner = agent.handler;
  const handler: AgentHandler = (dom, cmd, timeout) => {
    arrivals.push({ execute: cmd.execute, at: Date.now() });
    observe?.(cmd.execute);
    return inner(dom, cmd, timeout);
  };
  // The state dirs go once the gateways have closed (they write to them until then).
  h = await build({
    domains: ['vm1'],
    agent: handler,
    gateway: false,
    after: () => {
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  });
  fake = h.fake;
}

async function startGateway(stateDir?: string) {
  gw = await h.startGateway(stateDir === undefined ? {} : { state: { dir: stateDir } });
  await gw.gateway.recovered;
}

const call = (method: Method, url: string, payload?: unknown) => request(gw!, method, url, payload);

const sent = () => fake!.agentLog.filter((e) => e.execute !== 'guest-info').map((e) => e.execute);
const thawsSent = () => sent().filter((e) => e === 'guest-fsfreeze-thaw').length;
const held = () => gw!.gateway.freeze.registry.all().length;
const logged = (msg: string) => gw!.logs.filter((l) => l.msg === msg);

/** Where the journal keeps a domain's freeze: state.dir/freezes/<sha256(host/uuid), 32 hex>.json. */
function recordFile(stateDir: string, uuid: string, host = 'local'): string {
  return join(stateDir, 'freezes', `${createHash('sha256').update(`${host}/${uuid}`).digest('hex').slice(0, 32)}.json`);
}

function readRecord(file: string): FreezeRecord {
  return freezeRecordSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
}

/** A record as a gateway that died would have left it for vm1 (or the domain named). */
function recordFor(name: string, thawInMs: number, over: Partial<FreezeRecord> = {}): FreezeRecord {
  const dom = fake!.domain(name);
  return {
    id: `local/${dom.uuid}`,
    host: 'local',
    uuid: dom.uuid,
    name,
    domId: dom.id,
    mountpoints: null,
    frozenAt: new Date(Date.now() - 5_000).toISOString(),
    thawAt: new Date(Date.now() + thawInMs).toISOString(),
    ...over,
  };
}

describe('recording freezes', () => {
  it('never lets a deadline shorter than the record write and the freeze itself thaw before the freeze is sent', async () => {
    // Slow the freeze down: its deadline (1 ms) passes long before it is answered.
    await startFake();
    const inner = fake!.agentHandler!;
    fake!.agentHandler = async (dom, cmd, timeout) => {
      if (cmd.execute === 'guest-fsfreeze-freeze') await new Promise((r) => setTimeout(r, 200));
      return inner(dom, cmd, timeout);
    };
    await startGateway();
    for (let i = 0; i < 5; i++) {
      const r = await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 1 });
      expect(r.status).toBe(200);
      await waitFor(() => held() === 0 && agent.frozen.get('vm1') === false, 3000, 'the deadline thaw');
      const order = sent().filter((e) => e === 'guest-fsfreeze-freeze' || e === 'guest-fsfreeze-thaw');
      expect(order.slice(-2)).toEqual(['guest-fsfreeze-freeze', 'guest-fsfreeze-thaw']);
    }
    expect(readdirSync(join(gw!.gateway.config.state.dir, 'freezes')).filter((f) => f.endsWith('.json'))).toEqual([]);
  });

  it('writes the record before guest-fsfreeze-freeze is sent, and DELETE removes it', async () => {
    let seenAtFreeze: unknown = 'freeze never sent';
    let file = '';
    await startFake((cmd) => {
      if (cmd === 'guest-fsfreeze-freeze') seenAtFreeze = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : 'no record yet';
    });
    await startGateway();
    const stateDir = gw!.gateway.config.state.dir;
    const dom = fake!.domain('vm1');
    file = recordFile(stateDir, dom.uuid);

    const r = await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 60_000 });
    expect(r.status).toBe(200);
    const { frozenAt, autoThawAt } = r.body.heldByGateway;
    const expected: FreezeRecord = {
      id: `local/${dom.uuid}`,
      host: 'local',
      uuid: dom.uuid,
      name: 'vm1',
      domId: dom.id,
      mountpoints: null,
      frozenAt,
      thawAt: autoThawAt,
    };
    expect(dom.id).toBeGreaterThan(0);
    expect(seenAtFreeze).toEqual(expected);
    expect(readRecord(file)).toEqual(expected);
    expect(readdirSync(join(stateDir, 'freezes'))).toEqual([file.split('/').at(-1)]);

    expect((await call('DELETE', '/domains/vm1/fsfreeze')).status).toBe(200);
    await waitFor(() => !existsSync(file), 5000, 'the record removed');
    expect(readdirSync(join(stateDir, 'freezes'))).toEqual([]);
  });

  it('records the mount points of a freeze-list', async () => {
    await startFake();
    await startGateway();
    const file = recordFile(gw!.gateway.config.state.dir, fake!.domain('vm1').uuid);
    expect((await call('POST', '/domains/vm1/fsfreeze', { mountpoints: ['/var'], thawAfterMs: 60_000 })).status).toBe(200);
    expect(readRecord(file).mountpoints).toEqual(['/var']);
  });

  it('the deadline thaw removes the record', async () => {
    await startFake();
    await startGateway();
    const file = recordFile(gw!.gateway.config.state.dir, fake!.domain('vm1').uuid);
    expect((await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 300 })).body.status).toBe('frozen');
    expect(existsSync(file)).toBe(true);
    await waitFor(() => held() === 0 && !existsSync(file), 5000, 'the deadline thaw and the record removed');
    expect(sent().at(-1)).toBe('guest-fsfreeze-thaw');
    expect(agent.frozen.get('vm1')).toBe(false);
  });

  it('a domain that stops drops the record with the freeze', async () => {
    await startFake();
    await startGateway();
    const file = recordFile(gw!.gateway.config.state.dir, fake!.domain('vm1').uuid);
    await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 60_000 });
    expect(existsSync(file)).toBe(true);
    fake!.emitLifecycle('vm1', LifecycleEvent.STOPPED);
    await waitFor(() => held() === 0 && !existsSync(file), 5000, 'the freeze and its record forgotten');
  });

  it('a freeze that definitely failed leaves no record', async () => {
    await startFake();
    await startGateway();
    const file = recordFile(gw!.gateway.config.state.dir, fake!.domain('vm1').uuid);
    agent.overrides.set('guest-fsfreeze-freeze', { error: { class: 'GenericError', desc: 'failed to freeze /: Device or resource busy' } });
    expect((await call('POST', '/domains/vm1/fsfreeze')).status).toBe(502);
    await waitFor(() => !existsSync(file), 5000, 'the record removed');
    expect(held()).toBe(0);
  });

  it('refuses to freeze (503 state_unavailable, nothing sent, nothing held) while state.dir cannot be written, and freezes once it can', async () => {
    await startFake();
    const stateDir = join(tempDir(), 'state');
    // A regular file where the state directory should be (as root, chmod would not stop the gateway).
    writeFileSync(stateDir, 'in the way');
    await startGateway(stateDir);

    const r = await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 60_000 });
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ code: 'state_unavailable', domain: 'vm1', command: 'guest-fsfreeze-freeze' });
    expect(r.body.detail).toMatch(/^not frozen: could not record freezes entry in .*ENOTDIR/);
    expect(sent()).toEqual([]);
    expect(held()).toBe(0);
    expect(agent.frozen.get('vm1') ?? false).toBe(false);
    expect(logged('freeze refused: its record could not be written')).toHaveLength(1);
    // Nothing held: other commands pass.
    expect((await call('GET', '/domains/vm1/network-interfaces')).status).toBe(200);

    // Fixed while the gateway runs: the next freeze is recorded and sent.
    rmSync(stateDir);
    const again = await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 60_000 });
    expect(again.status).toBe(200);
    expect(readRecord(recordFile(stateDir, fake!.domain('vm1').uuid)).thawAt).toBe(again.body.heldByGateway.autoThawAt);
  });
});

describe('recovering freezes at start-up', () => {
  it('holds a recorded freeze again (409 for other commands) and thaws it at its deadline, then drops the record', async () => {
    await startFake();
    agent.frozen.set('vm1', true);
    const stateDir = tempDir();
    // Ahead of its deadline when it is taken back, with room for a slow start of the test gateway.
    const record = recordFor('vm1', 3_000);
    await freezeJournal(stateDir).put(record);
    const file = recordFile(stateDir, record.uuid);
    expect(existsSync(file)).toBe(true);

    await startGateway(stateDir);
    expect(logged('freeze journal: freeze held again until its deadline')).toMatchObject([
      { domain: 'vm1', uuid: record.uuid, overdue: false },
    ]);
    expect(held()).toBe(1);

    const status = await call('GET', '/domains/vm1/fsfreeze');
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({
      status: 'frozen',
      heldByGateway: { frozenAt: record.frozenAt, autoThawAt: record.thawAt, mountpoints: null, blocking: true },
    });
    const nic = await call('GET', '/domains/vm1/network-interfaces');
    expect(nic.status).toBe(409);
    expect(nic.body.code).toBe('state_conflict');
    // A second freeze is refused too: the gateway already holds one.
    expect((await call('POST', '/domains/vm1/fsfreeze')).status).toBe(409);
    expect(thawsSent()).toBe(0);
    expect(existsSync(file)).toBe(true);

    await waitFor(() => thawsSent() === 1, 5000, 'the deadline thaw');
    const thawAt = arrivals.find((a) => a.execute === 'guest-fsfreeze-thaw')!.at;
    expect(thawAt).toBeGreaterThanOrEqual(Date.parse(record.thawAt) - 50);
    expect(thawAt).toBeLessThan(Date.parse(record.thawAt) + 1_000);
    await waitFor(() => held() === 0 && !existsSync(file), 5000, 'the freeze released and its record removed');
    expect(agent.frozen.get('vm1')).toBe(false);
    expect((await call('GET', '/domains/vm1/network-interfaces')).status).toBe(200);
  });

  it('thaws at once a recorded freeze whose deadline passed while the gateway was down', async () => {
    await startFake();
    agent.frozen.set('vm1', true);
    const stateDir = tempDir();
    const record = recordFor('vm1', -10_000);
    await freezeJournal(stateDir).put(record);
    await startGateway(stateDir);
    const [line] = logged('freeze journal: deadline passed while the gateway was down; thawing now');
    expect(line).toMatchObject({ domain: 'vm1', overdue: true, thawAt: record.thawAt });
    await waitFor(() => thawsSent() === 1, 5000, 'the thaw');
    // Thawed as soon as the domain is found (how long after the start that is: the next test).
    expect(arrivals.find((a) => a.execute === 'guest-fsfreeze-thaw')!.at - Number(line!.time)).toBeLessThan(500);
    await waitFor(() => held() === 0 && !existsSync(recordFile(stateDir, record.uuid)), 5000, 'the record removed');
    expect(agent.frozen.get('vm1')).toBe(false);
  });

  it('drops a record whose guest its agent says is thawed already (thawed by hand while the gateway was down)', async () => {
    await startFake();
    agent.frozen.set('vm1', false);
    const stateDir = tempDir();
    const record = recordFor('vm1', 60_000);
    await freezeJournal(stateDir).put(record);
    await startGateway(stateDir);
    expect(logged('freeze journal: the guest is thawed already (by hand, or by a restart of its agent); record dropped')).toHaveLength(1);
    expect(held()).toBe(0);
    expect(thawsSent()).toBe(0);
    await waitFor(() => !existsSync(recordFile(stateDir, record.uuid)), 3000, 'the record removed');
    // Nothing blocks the domain's other commands.
    expect((await call('GET', '/domains/vm1/hostname')).status).not.toBe(409);
  });

  it('answers 409 to a new freeze of a domain whose recorded freeze is still being taken back', async () => {
    await startFake();
    agent.frozen.set('vm1', true);
    const inner = fake!.agentHandler!;
    fake!.agentHandler = async (dom, cmd, timeout) => {
      if (cmd.execute === 'guest-fsfreeze-status') await new Promise((r) => setTimeout(r, 500));
      return inner(dom, cmd, timeout);
    };
    const stateDir = tempDir();
    const record = recordFor('vm1', 60_000);
    await freezeJournal(stateDir).put(record);
    gw = await h.startGateway({ state: { dir: stateDir } });
    const r = await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 5_000 });
    expect(r.status).toBe(409);
    expect(r.body.detail).toContain('taking back a freeze');
    await gw.gateway.recovered;
    // The recorded freeze is the one held, with its own deadline, and its record is intact.
    expect(gw.gateway.freeze.registry.all().map((h) => h.thawAt.toISOString())).toEqual([record.thawAt]);
    expect(readRecord(recordFile(stateDir, record.uuid))).toEqual(record);
  });

  // Recovery waits for libvirt's first connection: a look-up before it would fail and wait for the next try
  // (2 s), leaving an overdue freeze frozen that much longer. Here libvirt is made a little slow to connect.
  it('thaws an overdue recorded freeze as soon as libvirt is connected, not 2 s later', async () => {
    await startFake();
    fake!.setReplyDelay(RemoteProc.CONNECT_OPEN, 150);
    agent.frozen.set('vm1', true);
    const stateDir = tempDir();
    await freezeJournal(stateDir).put(recordFor('vm1', -10_000));
    const started = Date.now();
    gw = await h.startGateway({ state: { dir: stateDir } });
    await waitFor(() => thawsSent() === 1, 5000, 'the thaw');
    expect(arrivals.find((a) => a.execute === 'guest-fsfreeze-thaw')!.at - started).toBeLessThan(1_000);
  });

  it('drops a record whose domain no longer exists, without sending anything', async () => {
    await startFake();
    const stateDir = tempDir();
    const record = recordFor('vm1', 60_000, {
      uuid: '11111111-2222-4333-8444-555555555555',
      id: 'local/11111111-2222-4333-8444-555555555555',
      name: 'gone',
    });
    await freezeJournal(stateDir).put(record);
    const file = recordFile(stateDir, record.uuid);
    expect(existsSync(file)).toBe(true);
    await startGateway(stateDir);
    expect(logged('freeze journal: record dropped')).toMatchObject([
      { uuid: record.uuid, domain: 'gone', why: 'the domain no longer exists' },
    ]);
    await waitFor(() => !existsSync(file), 5000, 'the record removed');
    expect(held()).toBe(0);
    expect(sent()).toEqual([]);
  });

  it('drops a record whose domain has restarted since (another libvirt id), without thawing', async () => {
    await startFake();
    agent.frozen.set('vm1', true);
    const stateDir = tempDir();
    const record = recordFor('vm1', 60_000, { domId: fake!.domain('vm1').id + 7 });
    await freezeJournal(stateDir).put(record);
    await startGateway(stateDir);
    const [drop] = logged('freeze journal: record dropped');
    expect(drop).toMatchObject({ uuid: record.uuid, domain: 'vm1' });
    expect(String(drop!.why)).toMatch(/restarted/);
    await waitFor(() => !existsSync(recordFile(stateDir, record.uuid)), 5000, 'the record removed');
    expect(held()).toBe(0);
    expect(thawsSent()).toBe(0);
  });

  it('drops a record whose domain is not running', async () => {
    await startFake();
    fake!.addDomain({ name: 'off', state: DomainState.SHUTOFF });
    const stateDir = tempDir();
    const record = recordFor('off', 60_000, { domId: 3 });
    await freezeJournal(stateDir).put(record);
    await startGateway(stateDir);
    expect(String(logged('freeze journal: record dropped')[0]?.why)).toMatch(/not running/);
    await waitFor(() => !existsSync(recordFile(stateDir, record.uuid)), 5000, 'the record removed');
    expect(held()).toBe(0);
    expect(sent()).toEqual([]);
  });

  it('sets aside a corrupt record with an error log line naming it, and still recovers the valid one', async () => {
    await startFake();
    agent.frozen.set('vm1', true);
    const stateDir = tempDir();
    const record = recordFor('vm1', 60_000);
    await freezeJournal(stateDir).put(record);
    const corrupt = join(stateDir, 'freezes', '0123456789abcdef0123456789abcdef.json');
    writeFileSync(corrupt, '{"id": "local/x", "host": ');
    await startGateway(stateDir);

    const lines = logged(
      'freeze journal: unreadable record set aside; the freeze it named (if any) is not thawed by the gateway: check the guests by hand',
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, file: corrupt });
    const keptAs = String(lines[0]!.keptAs);
    expect(keptAs.startsWith(`${corrupt}.corrupt-`)).toBe(true);
    expect(readFileSync(keptAs, 'utf8')).toBe('{"id": "local/x", "host": ');
    expect(existsSync(corrupt)).toBe(false);

    expect(held()).toBe(1);
    expect(logged('freeze journal: freeze held again until its deadline')).toHaveLength(1);
    expect((await call('GET', '/domains/vm1/fsfreeze')).body.heldByGateway).toMatchObject({ autoThawAt: record.thawAt, blocking: true });
  });
});

describe('the deadline thaw failing', () => {
  it('keeps retrying while the record stays, and removes it once the thaw succeeds', async () => {
    await startFake();
    await startGateway();
    const file = recordFile(gw!.gateway.config.state.dir, fake!.domain('vm1').uuid);
    agent.overrides.set('guest-fsfreeze-thaw', {
      libvirtError: { code: 86, message: 'Guest agent is not responding: Guest agent not available for now' },
    });
    expect((await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 100 })).body.status).toBe('frozen');
    const failures = () => logged('freeze deadline passed: thaw failed; retrying');
    await waitFor(() => failures().length >= 2, 6_000, 'two failed thaws');
    expect(failures().map((l) => l.attempt)).toEqual([1, 2]);
    expect(failures()[0]).toMatchObject({ retryInMs: 2_000 });
    expect(held()).toBe(1);
    expect(existsSync(file)).toBe(true);
    // Still held and blocking between the attempts.
    expect((await call('GET', '/domains/vm1/network-interfaces')).status).toBe(409);

    agent.overrides.delete('guest-fsfreeze-thaw');
    await waitFor(() => held() === 0 && !existsSync(file), 5_000, 'the retried thaw and the record removed');
    expect(agent.frozen.get('vm1')).toBe(false);
    expect(logged('freeze deadline passed: thawed')).toMatchObject([{ domain: 'vm1', attempt: 3 }]);
  }, 20_000);

  it('drops the freeze and its record when the thaw finds the domain not running', async () => {
    await startFake();
    await startGateway();
    const file = recordFile(gw!.gateway.config.state.dir, fake!.domain('vm1').uuid);
    expect((await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 300 })).body.status).toBe('frozen');
    // Stopped without a lifecycle event reaching the gateway.
    fake!.setState('vm1', DomainState.SHUTOFF);
    await waitFor(() => held() === 0 && !existsSync(file), 5_000, 'the freeze dropped');
    expect(logged('freeze deadline passed: the domain is gone or stopped, so is its freeze')).toHaveLength(1);
    expect(logged('freeze deadline passed: thaw failed; retrying')).toEqual([]);
  });
});

describe('graceful shutdown', () => {
  it('thaws a held freeze and removes its record', async () => {
    await startFake();
    await startGateway();
    const file = recordFile(gw!.gateway.config.state.dir, fake!.domain('vm1').uuid);
    await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 300_000 });
    expect(existsSync(file)).toBe(true);
    await gw!.close();
    gw = null;
    expect(agent.frozen.get('vm1')).toBe(false);
    expect(sent().at(-1)).toBe('guest-fsfreeze-thaw');
    // close() waits for the journal: the record is gone when it returns.
    expect(existsSync(file)).toBe(false);
  });

  it('keeps the record when the thaw fails, and the next start holds the freeze again', async () => {
    await startFake();
    const stateDir = tempDir();
    await startGateway(stateDir);
    const file = recordFile(stateDir, fake!.domain('vm1').uuid);
    const frozen = await call('POST', '/domains/vm1/fsfreeze', { thawAfterMs: 300_000 });
    expect(frozen.status).toBe(200);
    const before = readRecord(file);
    agent.overrides.set('guest-fsfreeze-thaw', {
      libvirtError: { code: 86, message: 'Guest agent is not responding: Guest agent not available for now' },
    });
    const first = gw!;
    await first.close();
    gw = null;
    expect(
      first.logs.filter((l) => l.msg === 'shutting down: thaw failed; its record stays in the journal for the next start'),
    ).toHaveLength(1);
    expect(agent.frozen.get('vm1')).toBe(true);
    expect(readRecord(file)).toEqual(before);

    // The next run takes it back, as frozen until the same deadline.
    agent.overrides.delete('guest-fsfreeze-thaw');
    await startGateway(stateDir);
    expect((await call('GET', '/domains/vm1/fsfreeze')).body.heldByGateway).toMatchObject({ autoThawAt: before.thawAt, blocking: true });
    expect((await call('DELETE', '/domains/vm1/fsfreeze')).status).toBe(200);
    await waitFor(() => !existsSync(file), 5000, 'the record removed');
  });
});
