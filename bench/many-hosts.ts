// One gateway with many libvirt hosts: H = 10 and 30 by default, every one the local libvirtd under its own name,
// alternately over TCP (qemu+tcp://127.0.0.1/system, as provisioned by scripts/provision-guests.sh) and over its unix
// socket (qemu+unix:///system), each host with its own connections. Per H: the time to all connections up from the
// gateway's start, its RSS idle, its open sockets (to libvirtd, and in all), GET /domains across every host, and a
// reconnect storm: libvirtd is restarted exactly as it runs (same command line and LIBVIRT_LOG_OUTPUTS), and the
// gateway's own log lines ('libvirt connection open', with their times) give the time until every host is up again
// and the peak connect rate (connections opened in any 100 ms).
//
//   npx tsx bench/many-hosts.ts [--hosts 10,30] [--samples 30] [--idle-seconds 10] [--down-ms 0] [--no-restart]
//                               [--server DIR/dist/server.js]
//
// RESTARTS LIBVIRTD (unless --no-restart): every libvirt client on the machine loses its connection (the guests keep
// running; the script checks that the same domains run afterwards). Run it where nobody else depends on libvirtd at
// that moment. It needs root (to signal and start libvirtd) and libvirtd started with --listen (the TCP hosts).
// --down-ms keeps libvirtd stopped that long before starting it again (0: at once, as `systemctl restart` does; longer: an
// upgrade, a crash until the service manager restarts it). --server runs another build (an older checkout's
// dist/server.js) to compare, as ping.ts --compare does.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import {
  arg,
  check,
  f2,
  formatSummary,
  get,
  get200,
  keepAliveAgent,
  main,
  rssMiB,
  sleep,
  startGateway,
  summarize,
  type RunningGateway,
} from './lib.js';

const TCP_URI = 'qemu+tcp://127.0.0.1/system';
const UNIX_URI = 'qemu+unix:///system';
const TCP_PORT = 16509;
/** scripts/provision-guests.sh's record of the libvirtd it started ("pid confighash"): kept true across our restart. */
const LIBVIRTD_STAMP = '/run/qga-gateway/libvirtd.started';

interface HostBody {
  name: string;
  state: string;
  connectionsUp: number;
  connections: number;
}

interface LogLine {
  t: number;
  msg: string;
  host?: string;
}

/** Collects the gateway's JSON log lines (stdout) with their times. */
function collectLog(gw: RunningGateway): LogLine[] {
  const lines: LogLine[] = [];
  let partial = '';
  gw.child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop()!;
    for (const p of parts) {
      if (!p.startsWith('{')) continue;
      try {
        const o = JSON.parse(p) as { time?: string; msg?: string; host?: string };
        if (o.time && o.msg) lines.push({ t: Date.parse(o.time), msg: o.msg, ...(o.host ? { host: o.host } : {}) });
      } catch {} // not JSON
    }
  });
  return lines;
}

function hostsConfig(n: number): { name: string; uri: string }[] {
  return Array.from({ length: n }, (_, i) => ({ name: `h${String(i + 1).padStart(2, '0')}`, uri: i % 2 === 0 ? TCP_URI : UNIX_URI }));
}

async function hostStates(port: number): Promise<HostBody[]> {
  const agent = keepAliveAgent(1);
  try {
    return (await get200(agent, port, '/hosts')).body.hosts as HostBody[];
  } finally {
    agent.destroy();
  }
}

/** Polls GET /hosts until every host has every connection open; resolves with the time it saw that. */
async function allUp(gw: RunningGateway, n: number, timeoutMs: number): Promise<number> {
  const agent = keepAliveAgent(1);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const r = await get(agent, gw.port, '/hosts', 10_000).catch(() => null);
      const hosts = (r?.status === 200 ? r.body.hosts : []) as HostBody[];
      const libvirt = hosts.filter((h) => h.name.startsWith('h'));
      if (libvirt.length === n && libvirt.every((h) => h.state === 'up')) return Date.now();
      if (Date.now() > deadline) {
        const down = libvirt.filter((h) => h.state !== 'up').map((h) => `${h.name} ${h.connectionsUp}/${h.connections}`);
        throw new Error(`not every host up within ${timeoutMs} ms: ${down.join(', ')}\n${gw.tail()}`);
      }
      await sleep(50);
    }
  } finally {
    agent.destroy();
  }
}

/** The gateway's sockets: all of them (from /proc/PID/fd), and those connected to libvirtd (TCP to its port, unix to its process). */
function sockets(gwPid: number, libvirtdPid: number): { total: number; tcp: number; unix: number } {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${gwPid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${gwPid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {} // closed meanwhile
  }
  const tcp = execFileSync('ss', ['-tnpH', 'state', 'established'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(`pid=${gwPid},`) && new RegExp(`\\s127\\.0\\.0\\.1:${TCP_PORT}\\s`).test(l)).length;
  // Unix sockets: a line per end, "local-path local-inode peer-path peer-inode process"; ours are those whose peer is
  // a socket of libvirtd's.
  const rows = execFileSync('ss', ['-xnpH'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /^u_\w+\s+\S+\s+\d+\s+\d+\s+\S+\s+(\d+)\s+\S+\s+(\d+)\s*(.*)$/.exec(l))
    .filter((m) => m !== null);
  const libvirtdInodes = new Set(rows.filter((m) => m[3]!.includes(`pid=${libvirtdPid},`)).map((m) => m[1]!));
  const unix = rows.filter((m) => inodes.has(m[1]!) && libvirtdInodes.has(m[2]!)).length;
  return { total: inodes.size, tcp, unix };
}

// ---- libvirtd -------------------------------------------------------------------------------------------------
const alive = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] !== 'Z';
  } catch {
    return false;
  }
};

function libvirtdPid(): number {
  const out = spawnSync('pgrep', ['-x', 'libvirtd'], { encoding: 'utf8' }).stdout.trim();
  const pids = out ? out.split('\n').map(Number).filter(alive) : [];
  check(pids.length === 1, `expected one libvirtd process, found ${pids.length}`);
  return pids[0]!;
}

function runningDomains(): string {
  return execFileSync('virsh', ['-q', '-c', 'qemu:///system', 'list', '--name'], { encoding: 'utf8', timeout: 30_000 })
    .split('\n')
    .filter(Boolean)
    .sort()
    .join(' ');
}

interface Restart {
  /** SIGTERM sent. */
  term: number;
  /** The old process gone. */
  exited: number;
  /** The new one started (libvirtd -d returned). */
  started: number;
  pid: number;
}

/** Stops libvirtd (SIGTERM, SIGKILL after 30 s) and, downMs later, starts it again with the same command line and log output. */
async function restartLibvirtd(downMs: number): Promise<Restart> {
  const pid = libvirtdPid();
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  check(argv.includes('-d') || argv.includes('--daemon'), `libvirtd runs without -d (${argv.join(' ')}): restart it yourself`);
  const env = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter((e) => e.startsWith('LIBVIRT_'))
      .map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );
  const stamp = existsSync(LIBVIRTD_STAMP) ? readFileSync(LIBVIRTD_STAMP, 'utf8').trim().split(' ') : null;
  const term = Date.now();
  process.kill(pid, 'SIGTERM');
  let killed = false;
  while (alive(pid)) {
    if (!killed && Date.now() - term > 30_000) {
      process.kill(pid, 'SIGKILL');
      killed = true;
    }
    await sleep(20);
  }
  const exited = Date.now();
  if (downMs > 0) await sleep(downMs);
  // Only stdin/stdout/stderr go to the daemon: a lock held by whoever runs this bench (flock) must not live on in it.
  const r = spawnSync(
    'bash',
    ['-c', 'cd /proc/$$/fd && for fd in *; do ((fd > 2)) && eval "exec $fd>&-"; done; cd / && exec "$@"', 'bash', ...argv],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'], timeout: 60_000 },
  );
  check(r.status === 0, `restarting libvirtd (${argv.join(' ')}) failed: ${r.status ?? r.signal}`);
  const started = Date.now();
  let next = 0;
  for (let i = 0; i < 100 && !next; i++) {
    try {
      next = libvirtdPid();
    } catch {
      await sleep(50);
    }
  }
  check(next && next !== pid, 'libvirtd did not come back');
  if (stamp && Number(stamp[0]) === pid) writeFileSync(LIBVIRTD_STAMP, `${next} ${stamp[1]}\n`);
  return { term, exited, started, pid: next };
}

/** libvirtd's own counters (virt-admin, over its admin socket): `srv-clients-info` or `srv-threadpool-info`; null without virt-admin. */
function virtAdmin(what: 'srv-clients-info' | 'srv-threadpool-info'): Record<string, number> | null {
  const r = spawnSync('virt-admin', [what, 'libvirtd'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return null;
  return Object.fromEntries(
    r.stdout
      .split('\n')
      .map((l) => /^\s*(\w+)\s*:\s*(\d+)/.exec(l))
      .filter((m) => m !== null)
      .map((m) => [m[1]!, Number(m[2])]),
  );
}

/** Samples virt-admin every 100 ms until stop(); the largest value seen of each counter. */
function sampleVirtAdmin(what: 'srv-clients-info' | 'srv-threadpool-info'): { stop(): Promise<Record<string, number>> } {
  const peak: Record<string, number> = {};
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const [k, v] of Object.entries(virtAdmin(what) ?? {})) peak[k] = Math.max(peak[k] ?? 0, v);
      await sleep(100);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return peak;
    },
  };
}

/** The most timestamps within any window of `ms` (sorted input). */
function peakIn(times: number[], ms: number): number {
  let best = 0;
  for (let i = 0, j = 0; j < times.length; j++) {
    while (times[j]! - times[i]! >= ms) i++;
    best = Math.max(best, j - i + 1);
  }
  return best;
}

// ---- one H -----------------------------------------------------------------------------------------------------
interface Options {
  samples: number;
  idleSeconds: number;
  restart: boolean;
  downMs: number;
  server?: string;
}

async function measure(n: number, opts: Options): Promise<void> {
  console.log(`\n  H = ${n} (${Math.ceil(n / 2)} over TCP, ${Math.floor(n / 2)} over the unix socket; 3 connections each)`);
  const spawned = Date.now();
  const gw = await startGateway({
    logLevel: 'info',
    readyTimeoutMs: 60_000,
    config: { libvirt: { hosts: hostsConfig(n) } },
    ...(opts.server ? { server: opts.server } : {}),
  });
  const log = collectLog(gw);
  const up = await allUp(gw, n, 60_000);
  const connections = (await hostStates(gw.port)).filter((h) => h.name.startsWith('h')).reduce((a, h) => a + h.connections, 0);
  console.log(
    `    start-up: every host up ${((up - spawned) / 1000).toFixed(2)} s after the gateway was spawned (${connections} connections)`,
  );
  await sleep(opts.idleSeconds * 1000);
  const rss = rssMiB(gw.pid);
  const s = sockets(gw.pid, libvirtdPid());
  console.log(`    RSS idle: ${f2(rss)} MiB (${opts.idleSeconds} s idle)`);
  console.log(`    sockets: ${s.tcp + s.unix} to libvirtd (${s.tcp} TCP, ${s.unix} unix), ${s.total} in all`);
  check(s.tcp + s.unix === connections, `expected ${connections} connections to libvirtd, counted ${s.tcp + s.unix}`);
  const clients = virtAdmin('srv-clients-info');
  if (clients)
    console.log(`    libvirtd: ${clients.nclients} clients of max_clients ${clients.nclients_max} (all its clients, not only ours)`);

  const agent = keepAliveAgent(1);
  const ms: number[] = [];
  let listed = 0;
  for (let i = 0; i < opts.samples + 3; i++) {
    const r = await get200(agent, gw.port, '/domains');
    check(
      (r.body.unavailableHosts as unknown[]).length === 0,
      `GET /domains: unavailable hosts ${JSON.stringify(r.body.unavailableHosts)}`,
    );
    const doms = r.body.domains as { host: string }[];
    check(
      new Set(doms.map((d) => d.host)).size === n,
      `GET /domains listed domains of ${new Set(doms.map((d) => d.host)).size} hosts, not ${n}`,
    );
    listed = doms.length;
    if (i >= 3) ms.push(r.ms); // 3 warm-up requests
  }
  console.log(formatSummary(`    GET /domains (${listed} domains, ${n} hosts)`, summarize(ms)));
  // libvirtd's worker pool under the same requests, sampled apart from the timed ones (virt-admin costs CPU).
  const pool = sampleVirtAdmin('srv-threadpool-info');
  const sampledUntil = Date.now() + 3000;
  while (Date.now() < sampledUntil) await get200(agent, gw.port, '/domains');
  const workers = await pool.stop();
  if (workers.maxWorkers)
    console.log(
      `    libvirtd during 3 s of GET /domains: at most ${workers.nWorkers} workers (max_workers ${workers.maxWorkers}), ` +
        `job queue depth up to ${workers.jobQueueDepth}`,
    );

  if (opts.restart) {
    const before = runningDomains();
    const from = log.length;
    const r = await restartLibvirtd(opts.downMs);
    const unauth = sampleVirtAdmin('srv-clients-info');
    const back = await allUp(gw, n, 120_000);
    const clientsPeak = await unauth.stop();
    await sleep(500); // the last log lines
    const lines = log.slice(from);
    const openLines = lines.filter((l) => l.msg === 'libvirt connection open' && l.t >= r.term);
    const opens = openLines.map((l) => l.t);
    // Every host reachable again: the first connection of the last host to get one.
    const firstPerHost = new Map<string, number>();
    for (const l of openLines) if (l.host && !firstPerHost.has(l.host)) firstPerHost.set(l.host, l.t);
    check(firstPerHost.size === n, `connections opened again on ${firstPerHost.size} hosts, not ${n}`);
    const reachable = Math.max(...firstPerHost.values());
    const lost = lines.filter((l) => l.msg === 'libvirt connection lost').length;
    const failed = lines.filter((l) => l.msg === 'libvirt connection failed; retrying').length;
    check(opens.length >= connections, `only ${opens.length} connections opened again, of ${connections}`);
    const first = opens[0]!;
    const last = opens[opens.length - 1]!;
    const per100 = new Map<number, number>();
    for (const t of opens) per100.set(Math.floor((t - first) / 100), (per100.get(Math.floor((t - first) / 100)) ?? 0) + 1);
    const buckets = Array.from({ length: Math.floor((last - first) / 100) + 1 }, (_, i) => per100.get(i) ?? 0);
    console.log(
      `    libvirtd restart: SIGTERM to exit ${r.exited - r.term} ms, started again ${r.started - r.term} ms after SIGTERM ` +
        `(libvirtd -d returned${opts.downMs ? `, after ${opts.downMs} ms stopped` : ''}); ${lost} connections lost`,
    );
    console.log(
      `    reconnect: first connection open ${first - r.term} ms after SIGTERM, every host reachable (one connection) ` +
        `${reachable - r.term} ms, every host up (all connections) ${back - r.term} ms after it ` +
        `(last connection open ${last - r.term} ms); ${opens.length} opened, ${failed} 'failed; retrying' lines`,
    );
    console.log(`    peak connect rate: ${peakIn(opens, 100)} connections in one 100 ms (sliding), ${peakIn(opens, 1000)} in one second`);
    console.log(`    opened per 100 ms from the first: ${buckets.join(' ')}`);
    if (clientsPeak.nclients_unauth_max !== undefined)
      console.log(
        `    libvirtd meanwhile: up to ${clientsPeak.nclients} clients, ${clientsPeak.nclients_unauth} not yet authenticated ` +
          `(max_anonymous_clients ${clientsPeak.nclients_unauth_max})`,
      );
    // The guests kept running: the same domains run (libvirtd finds its QEMU processes again).
    let after = '';
    for (let i = 0; i < 60 && after !== before; i++) {
      after = runningDomains();
      if (after !== before) await sleep(500);
    }
    check(after === before, `running domains before the restart: ${before}; after: ${after}`);
    const again = await get200(agent, gw.port, '/domains');
    check(
      (again.body.unavailableHosts as unknown[]).length === 0 && (again.body.domains as unknown[]).length === listed,
      'GET /domains after the restart',
    );
    console.log(`    after: the same ${before.split(' ').length} domains running; GET /domains lists ${listed} again`);
  }
  agent.destroy();
  check((await gw.stop()) === 0, `the gateway did not exit 0 on SIGTERM:\n${gw.tail()}`);
}

main(async () => {
  const hs = arg('hosts', '10,30').split(',').map(Number);
  check(
    hs.every((h) => Number.isInteger(h) && h > 0 && h <= 256),
    '--hosts: comma-separated counts (1..256)',
  );
  const samples = Number(arg('samples', '30'));
  const idleSeconds = Number(arg('idle-seconds', '10'));
  const restart = !process.argv.includes('--no-restart');
  const downMs = Number(arg('down-ms', '0'));
  check(Number.isInteger(downMs) && downMs >= 0 && downMs <= 60_000, '--down-ms: 0..60000');
  const server = arg('server', '');
  if (restart) check(process.getuid?.() === 0, 'restarting libvirtd needs root (or --no-restart)');
  console.log(
    `many-hosts: one gateway with H libvirt hosts, all the local libvirtd (alternately ${TCP_URI} and ${UNIX_URI})` +
      `${restart ? `; restarts libvirtd once per H${downMs ? ` (stopped for ${downMs} ms)` : ''}` : ''}${server ? `; build ${server}` : ''}`,
  );
  for (const n of hs) await measure(n, { samples, idleSeconds, restart, downMs, ...(server ? { server } : {}) });
});
