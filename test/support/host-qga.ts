// A real qemu-ga on the host, without a VM: `qemu-ga -m unix-listen` on a socket in a temp dir, with every command
// that could change the host blocked (-b). It answers the wire protocol exactly as in a guest, from the host's view
// (host name, interfaces, file systems). Run as root, it is root: the block list is what keeps the tests harmless,
// and startHostQga() checks through guest-info that it took effect before anything else talks to the agent.
//
//   const qga = await startHostQga({ restartOnExit: true });   // qga.path is the socket
//   ... qga.exits (how it ended each time it died by itself), qga.pid, qga.restarts
//   await qga.stop();                                           // SIGTERM (SIGKILL after 3 s), temp dir removed
//
// restartOnExit plays the guest's service manager: qemu-ga 7.2 in unix-listen mode exits when its client disconnects
// with reply bytes still unread (ECONNRESET on its read: "error reading channel", exit status 0).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Everything that writes to the host, runs programs, changes accounts, power, clock, CPUs, memory or disks. */
export const BLOCKED_RPCS = [
  'guest-exec',
  'guest-file-write',
  'guest-shutdown',
  'guest-suspend-disk',
  'guest-suspend-ram',
  'guest-suspend-hybrid',
  'guest-fsfreeze-freeze',
  'guest-fsfreeze-freeze-list',
  'guest-set-time',
  'guest-set-user-password',
  'guest-set-vcpus',
  'guest-set-memory-blocks',
  'guest-ssh-add-authorized-keys',
  'guest-ssh-remove-authorized-keys',
  'guest-fstrim',
] as const;

export interface HostQga {
  readonly path: string;
  readonly dir: string;
  /** The running process's pid (changes on restart). */
  readonly pid: number;
  readonly restarts: number;
  /** How each unexpected exit ended. */
  readonly exits: { code: number | null; signal: NodeJS.Signals | null; stderrTail: string }[];
  readonly version: string;
  /** Resolves once a restarted agent listens again (after an exit; immediately when running). */
  running(): Promise<void>;
  stop(): Promise<void>;
}

/** The agent versions the host can run: Debian 12's own (7.2), and Debian 13's (10.0) from scripts/qemu-ga-10.sh. */
export type HostQgaVersion = '7.2' | '10.0';
export const HOST_QGA_VERSIONS: HostQgaVersion[] = ['7.2', '10.0'];
const QEMU_GA_10 = '/var/cache/qga-gateway/qemu-ga-10/qemu-ga';

export function findQemuGa(version: HostQgaVersion = '7.2'): string {
  if (version === '10.0') {
    const wrapper = process.env.QEMU_GA_10 || QEMU_GA_10;
    if (!existsSync(wrapper)) throw new Error(`qemu-ga 10.0 not found at ${wrapper}: run scripts/qemu-ga-10.sh (scripts/test-all.sh does)`);
    return wrapper;
  }
  const candidates = [process.env.QEMU_GA, '/usr/bin/qemu-ga', '/usr/sbin/qemu-ga'].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`qemu-ga not found (tried ${candidates.join(', ')}): install qemu-guest-agent (scripts/provision-guests.sh does)`);
  }
  return found;
}

/**
 * allow: commands of BLOCKED_RPCS to leave enabled for one test (guest-file-write, to write into a test directory
 * of the host). Everything else stays blocked.
 */
export async function startHostQga(
  opts: { restartOnExit?: boolean; allow?: (typeof BLOCKED_RPCS)[number][]; version?: HostQgaVersion } = {},
): Promise<HostQga> {
  const blocked = BLOCKED_RPCS.filter((c) => !opts.allow?.includes(c));
  const bin = findQemuGa(opts.version);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'host-qga-'));
  const stateDir = path.join(dir, 'state');
  await mkdir(stateDir);
  const socketPath = path.join(dir, 'qga.sock');
  const args = ['-m', 'unix-listen', '-p', socketPath, '-t', stateDir, '-f', path.join(dir, 'qga.pid'), '-b', blocked.join(',')];

  let child: ChildProcess | null = null;
  let stopping = false;
  let restarts = 0;
  let stderr = '';
  let ready: Promise<void> = Promise.resolve();
  const exits: HostQga['exits'] = [];

  const launch = async (): Promise<void> => {
    await rm(socketPath, { force: true });
    stderr = '';
    const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    proc.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-4000);
    });
    // 'close', not 'exit': by then the last words on stderr have been read.
    proc.once('close', (code, signal) => {
      if (stopping || child !== proc) return;
      exits.push({ code, signal, stderrTail: stderr.trim().split('\n').slice(-3).join('\n') });
      child = null;
      if (opts.restartOnExit) {
        restarts += 1;
        ready = launch();
        ready.catch(() => {});
      }
    });
    await waitListening(socketPath, proc, () => stderr);
  };

  await launch();
  const version = await checkBlocked(socketPath, blocked);
  return {
    path: socketPath,
    dir,
    get pid() {
      return child?.pid ?? -1;
    },
    get restarts() {
      return restarts;
    },
    exits,
    version,
    running: async () => {
      // An exit may have happened without its 'exit' event handled yet: give it a moment to be seen.
      await new Promise((r) => setTimeout(r, 50));
      await ready;
      if (!child) throw new Error('qemu-ga is not running');
    },
    stop: async () => {
      stopping = true;
      const proc = child as ChildProcess | null;
      if (proc && proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The socket file appears at bind(); a connection that succeeds proves listen(). The probe leaves cleanly. */
export async function waitListening(socketPath: string, proc: ChildProcess, stderr: () => string): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`qemu-ga exited at start (${proc.exitCode ?? proc.signalCode}): ${stderr()}`);
    }
    const isSocket = await stat(socketPath).then(
      (s) => s.isSocket(),
      () => false,
    );
    if (isSocket && (await probe(socketPath))) return;
    if (Date.now() > until) throw new Error(`qemu-ga did not listen on ${socketPath} within 10 s: ${stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function probe(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path: socketPath });
    s.once('connect', () => {
      s.once('close', () => resolve(true));
      s.end();
    });
    s.once('error', () => resolve(false));
  });
}

/** guest-info on a raw connection: every blocked command must show as disabled, or the tests stop here. */
export async function checkBlocked(socketPath: string, blocked: readonly string[]): Promise<string> {
  const reply = await rawExchange(socketPath, '\xff{"execute":"guest-sync-delimited","arguments":{"id":1}}\n{"execute":"guest-info"}\n', 3);
  const info = JSON.parse(reply[2]!) as {
    return: { version: string; supported_commands: { name: string; enabled: boolean }[] };
  };
  const enabled = new Map(info.return.supported_commands.map((c) => [c.name, c.enabled]));
  const notBlocked = blocked.filter((name) => enabled.get(name) === true);
  if (notBlocked.length) throw new Error(`qemu-ga did not block ${notBlocked.join(', ')}: refusing to test against it`);
  return info.return.version;
}

/**
 * Writes `text` (latin1, so "\xff" is the byte 0xFF) on a fresh connection, reads `lines` newline-terminated replies
 * (a leading 0xFF stripped), then leaves cleanly: everything the agent sent has been read, so it sees EOF, not a reset.
 */
export function rawExchange(socketPath: string, text: string, lines: number, timeoutMs = 5000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: socketPath });
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`raw exchange: ${lines} replies not received within ${timeoutMs} ms (got ${JSON.stringify(buf)})`));
    }, timeoutMs);
    s.setEncoding('latin1');
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on('data', (d: string) => {
      buf += d;
      const got = buf.split('\n');
      if (got.length - 1 >= lines) {
        clearTimeout(timer);
        s.once('close', () => resolve(got.slice(0, lines).map((l) => Buffer.from(l.replace(/^\xff/, ''), 'latin1').toString('utf8'))));
        s.end();
      }
    });
    s.once('connect', () => s.write(Buffer.from(text, 'latin1')));
  });
}
