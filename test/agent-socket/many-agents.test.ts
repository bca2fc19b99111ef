// 200 real qemu-ga processes on the host (test/support/host-qga-fleet.ts), served at once by one in-process gateway
// through an agentSockets directory glob, libvirt off. Correctness at scale, no timing: an exec of
// `/bin/sh -c 'echo $PPID'` through every domain at once must name that socket's own qemu-ga (the process that forked
// the shell), so no answer crossed between domains; afterwards nothing is left behind: no guest file handle in the
// gateway, no pipe or handle in any agent, no agent killed by the gateway, and, once the gateway has closed, not one
// of its file descriptors (agent sockets included) still open.
import { readdirSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQgaFleet, type QgaFleet } from '../support/host-qga-fleet.js';
import { waitFor } from '../support/fake-libvirtd/faults.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';

const COUNT = 200;

/** This process's open file descriptors, each with what it points at (socket:[inode], pipe:[inode], a path). */
function openFds(pid: number | 'self' = 'self'): Map<string, string> {
  const fds = new Map<string, string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      fds.set(fd, readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed between the listing and the readlink (the listing's own descriptor among them)
    }
  }
  return fds;
}

/** Descriptors open now that were not before, as "fd -> target". */
function added(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after].filter(([fd, target]) => before.get(fd) !== target).map(([fd, target]) => `${fd} -> ${target}`);
}

describe(`${COUNT} qemu-ga agent sockets served at once`, () => {
  let fleet: QgaFleet;
  let gw: TestGateway;
  let fdsBefore: Map<string, string>;
  /** Each agent's descriptors before any exec: guest-exec's pipes must all be closed again afterwards. */
  const agentFdsBefore = new Map<string, number>();

  beforeAll(async () => {
    fleet = await startQgaFleet({ count: COUNT, allow: ['guest-exec'] });
    for (const a of fleet.agents) agentFdsBefore.set(a.name, readdirSync(`/proc/${a.pid}/fd`).length);
    fdsBefore = openFds();
    gw = await startTestGateway('qemu:///system', {
      libvirt: { enabled: false },
      agentSockets: { directories: [{ glob: fleet.glob }] },
      // No background reads of the agents' interfaces: the test counts what its own requests leave behind.
      events: { enabled: false },
    });
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    await fleet?.stop();
  });

  async function execEverywhere(): Promise<{ name: string; status: number; body: any }[]> {
    return Promise.all(
      fleet.agents.map(async (a) => {
        const res = await gw.app.inject({
          method: 'POST',
          url: `/domains/${a.name}/exec`,
          payload: { path: '/bin/sh', args: ['-c', 'echo $PPID'], wait: { timeoutMs: 50_000 } },
        });
        return { name: a.name, status: res.statusCode, body: res.json() };
      }),
    );
  }

  it('lists every socket as a running domain', async () => {
    const res = await gw.app.inject({ method: 'GET', url: '/domains' });
    expect(res.statusCode).toBe(200);
    const domains = res.json().domains as { name: string; backend: string; state: string }[];
    expect(domains.map((d) => d.name).sort()).toEqual(fleet.agents.map((a) => a.name).sort());
    expect(domains.every((d) => d.backend === 'agent-socket' && d.state === 'running')).toBe(true);
  });

  it("an exec through every socket at once names that socket's own qemu-ga; twice, on the open channels", async () => {
    for (let round = 0; round < 2; round++) {
      const results = await execEverywhere();
      const pidOf = new Map(fleet.agents.map((a) => [a.name, a.pid]));
      const wrong = results.filter((r) => r.status !== 201 || r.body.exitCode !== 0 || r.body.stdout?.data !== `${pidOf.get(r.name)}\n`);
      expect(
        wrong.map((r) => ({
          domain: r.name,
          qgaPid: pidOf.get(r.name),
          status: r.status,
          stdout: r.body.stdout?.data,
          detail: r.body.detail,
        })),
        `round ${round + 1}`,
      ).toEqual([]);
      // Every pid different: each shell was forked by another agent.
      expect(new Set(results.map((r) => r.body.stdout.data)).size).toBe(COUNT);
    }
    expect(fleet.restarts).toBe(0);
  });

  it('leaves nothing behind: no guest file handle, no pipe in an agent, one socket per agent, none once closed', async () => {
    expect(gw.gateway.files.openHandles()).toEqual([]);
    // guest-exec's output pipes live in the agent until guest-exec-status has reported the exit: all closed again. What
    // each agent holds beyond its descriptors before the first exec is the gateway's one connection to it.
    const agentFds = () =>
      fleet.agents.map((a) => ({ name: a.name, more: readdirSync(`/proc/${a.pid}/fd`).length - agentFdsBefore.get(a.name)! }));
    expect(agentFds().filter((a) => a.more !== 1)).toEqual([]);
    // While the gateway runs: one socket per agent, kept open for the next command, and nothing else.
    const open = added(fdsBefore, openFds());
    expect(open.filter((f) => !/-> socket:\[\d+\]$/.test(f))).toEqual([]);
    expect(open.length).toBe(COUNT);
    expect(gw.gateway.agentSockets!.connectedCount).toBe(COUNT);

    await gw.close();
    expect(added(fdsBefore, openFds())).toEqual([]);
    // Each agent has seen the gateway hang up (it reads to the end first: no agent took it for a reset and exited).
    await waitFor(() => agentFds().every((a) => a.more === 0), 10_000, 'every agent to close its end of the connection');
    expect(fleet.restarts).toBe(0);
  });
});
