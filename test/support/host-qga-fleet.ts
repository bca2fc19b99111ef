// Many real qemu-ga processes on the host at once, without VMs: each in unix-listen mode on its own socket, all the
// sockets in one directory (so that one agentSockets.directories glob serves them), each with its own state dir, every
// command that could change the host blocked (host-qga.ts's list) unless `allow` names it. A supervisor restarts an
// agent that exits (qemu-ga 7.2 in unix-listen mode exits when a client hangs up with reply bytes unread), as a
// guest's service manager would, and counts the restarts.
//
//   const fleet = await startQgaFleet({ count: 200, allow: ['guest-exec'] });
//   fleet.glob                // DIR/sockets/*.sock: a007.sock is domain a007 with agentSockets' default name template
//   fleet.agents[i].pid       // the running qemu-ga's pid (changes on restart); .restarts, .path, .name
//   await fleet.stop();       // SIGTERM all (SIGKILL after 3 s), temp dir removed; fleet.kill() does it synchronously
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BLOCKED_RPCS, checkBlocked, findQemuGa, waitListening } from './host-qga.js';

export interface FleetAgent {
  /** a001, a002, ...: the socket's stem, so the domain's name under agentSockets' default template. */
  readonly name: string;
  /** The unix socket. */
  readonly path: string;
  /** The running process's pid, -1 between an exit and its restart. */
  readonly pid: number;
  /** Exits the supervisor restarted. */
  readonly restarts: number;
}

export interface QgaFleet {
  readonly dir: string;
  /** The sockets' glob, for agentSockets.directories. */
  readonly glob: string;
  readonly agents: readonly FleetAgent[];
  /** Restarts over the whole fleet. */
  readonly restarts: number;
  /** Resolves when every agent listens (again). */
  allListening(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
  /** SIGKILL every agent and remove the temp dir, synchronously: for exit handlers. */
  kill(): void;
}

export interface FleetOptions {
  count: number;
  /** Commands of BLOCKED_RPCS left enabled (guest-exec, to run `echo $PPID`). */
  allow?: (typeof BLOCKED_RPCS)[number][];
  /** Agents started at once. */
  startConcurrency?: number;
  /** Pause before restarting an agent that exited (systemd's RestartSec). */
  restartDelayMs?: number;
}

class Agent implements FleetAgent {
  child: ChildProcess | null = null;
  restarts = 0;
  stopping = false;
  listening: Promise<void> = Promise.resolve();
  stderr = '';

  constructor(
    readonly name: string,
    readonly path: string,
    private readonly bin: string,
    private readonly args: string[],
    private readonly restartDelayMs: number,
  ) {}

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  launch(): Promise<void> {
    const run = async () => {
      await rm(this.path, { force: true });
      this.stderr = '';
      const proc = spawn(this.bin, this.args, { stdio: ['ignore', 'ignore', 'pipe'] });
      this.child = proc;
      proc.stderr?.on('data', (d: Buffer) => {
        this.stderr = (this.stderr + d.toString('utf8')).slice(-2000);
      });
      proc.once('close', () => {
        if (this.stopping || this.child !== proc) return;
        this.child = null;
        this.restarts += 1;
        setTimeout(() => {
          if (!this.stopping) this.launch().catch(() => {});
        }, this.restartDelayMs);
      });
      await waitListening(this.path, proc, () => this.stderr);
    };
    this.listening = run();
    return this.listening;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const proc = this.child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    this.stopping = true;
    const proc = this.child;
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
}

export async function startQgaFleet(opts: FleetOptions): Promise<QgaFleet> {
  const blocked = BLOCKED_RPCS.filter((c) => !opts.allow?.includes(c));
  const bin = findQemuGa('7.2');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qga-fleet-'));
  const socketDir = path.join(dir, 'sockets');
  mkdirSync(socketDir);
  const width = String(opts.count).length;
  const agents: Agent[] = [];
  for (let i = 1; i <= opts.count; i++) {
    const name = `a${String(i).padStart(width, '0')}`;
    const stateDir = path.join(dir, 'state', name);
    mkdirSync(stateDir, { recursive: true });
    const socketPath = path.join(socketDir, `${name}.sock`);
    const args = ['-m', 'unix-listen', '-p', socketPath, '-t', stateDir, '-f', path.join(stateDir, 'qga.pid'), '-b', blocked.join(',')];
    agents.push(new Agent(name, socketPath, bin, args, opts.restartDelayMs ?? 100));
  }
  const kill = () => {
    for (const a of agents) a.kill();
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  };
  try {
    // A few at a time: 500 processes mapping the same libraries at once only thrash two cores.
    const concurrency = opts.startConcurrency ?? 16;
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, agents.length) }, async () => {
        while (next < agents.length) await agents[next++]!.launch();
      }),
    );
    // Same binary, same arguments: one guest-info proves the block list took effect for every agent.
    if (agents.length) await checkBlocked(agents[0]!.path, blocked);
  } catch (err) {
    kill();
    throw err;
  }
  return {
    dir,
    glob: path.join(socketDir, '*.sock'),
    agents,
    get restarts() {
      return agents.reduce((n, a) => n + a.restarts, 0);
    },
    allListening: async (timeoutMs = 10_000) => {
      const until = Date.now() + timeoutMs;
      for (const a of agents) {
        while (!a.child && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
        await a.listening;
      }
    },
    stop: async () => {
      await Promise.all(agents.map((a) => a.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
    kill,
  };
}
