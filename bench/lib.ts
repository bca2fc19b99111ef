// Helpers shared by the benchmarks: spawn the built gateway on a free port, a keep-alive HTTP client,
// percentiles, RSS, and cleanup of child processes and temp files on every exit path.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- cleanup ---------------------------------------------------------------------------------------------
const cleanups: (() => void)[] = [];
/** Registers a synchronous cleanup, run (last first) on exit, on an error, on SIGINT/SIGTERM/SIGHUP. */
export function onCleanup(fn: () => void): void {
  cleanups.push(fn);
}
function runCleanups(): void {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      fn();
    } catch {} // best effort
  }
}
process.on('exit', runCleanups);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}: stopping child processes\n`);
    runCleanups();
    process.exit(130);
  });
}

/** Runs a benchmark's main; any throw makes the process exit 1 after the cleanups. */
export function main(fn: () => Promise<void>): void {
  const timer = setTimeout(
    () => {
      process.stderr.write('bench: FAILED: overall time limit passed\n');
      process.exit(1);
    },
    Number(process.env.BENCH_MAX_SECONDS ?? 900) * 1000,
  );
  timer.unref();
  fn().then(
    () => process.exit(process.exitCode ?? 0),
    (err: unknown) => {
      const debug = process.env.BENCH_DEBUG && err instanceof Error ? err.stack : undefined;
      process.stderr.write(`bench: FAILED: ${debug ?? (err instanceof Error ? err.message : String(err))}\n`);
      process.exit(1);
    },
  );
}

export function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

/** --name value from the command line, else the fallback. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

// ---- the gateway -----------------------------------------------------------------------------------------
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface RunningGateway {
  port: number;
  pid: number;
  child: ChildProcess;
  /** The last lines it wrote (stdout and stderr), for diagnostics. */
  tail(): string;
  /** SIGTERM, then SIGKILL after 10 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface GatewayOptions {
  /** Written as YAML to a temp dir and passed with --config. */
  config?: Record<string, unknown>;
  logLevel?: string;
  readyTimeoutMs?: number;
  /** Another build's dist/server.js (an older checkout, to compare in the same run); this repo's by default. */
  server?: string;
}

export async function startGateway(opts: GatewayOptions = {}): Promise<RunningGateway> {
  const server = opts.server ?? join(REPO, 'dist/server.js');
  check(existsSync(server), `${server} is missing: build first (node_modules/.bin/tsc -p tsconfig.build.json)`);
  if (!opts.server && statSync(join(REPO, 'src/server.ts')).mtimeMs > statSync(server).mtimeMs)
    process.stderr.write('bench: warning: dist/ looks older than src/\n');
  // BENCH_GATEWAY_NODE_ARGS: options for the gateway's node (e.g. --cpu-prof --cpu-prof-dir=DIR, which NODE_OPTIONS refuses).
  const args = [...(process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean), server];
  // The benchmarks measure the gateway's work, on loopback: development mode (no tokens) and no rate limit
  // (the RSS run sends 20,000 requests in a minute) unless a config says otherwise.
  const dir = mkdtempSync(join(tmpdir(), 'qga-bench-'));
  // Its own state.dir, never the host's; not for another checkout's build (--compare), whose config may predate it.
  const config = {
    auth: { mode: 'none' },
    limits: { rateLimit: { max: 0 } },
    ...(opts.server ? {} : { state: { dir: join(dir, 'state') } }),
    ...opts.config,
  };
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, toYaml(config));
  args.push('--config', file);
  const port = await freePort();
  const env = { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: opts.logLevel ?? 'warn' };
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > 400) lines.splice(0, lines.length - 200);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  onCleanup(() => {
    if (exitCode === undefined) child.kill('SIGKILL');
  });
  const tail = () => lines.slice(-30).join('\n');
  const stop = async () => {
    if (exitCode !== undefined) return exitCode;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  };
  const gw: RunningGateway = { port, pid: child.pid!, child, tail, stop };
  // Ready once /readyz says a libvirt connection is open.
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  const agent = new http.Agent({ keepAlive: false });
  for (;;) {
    if (exitCode !== undefined) throw new Error(`the gateway exited with ${exitCode} during start-up:\n${tail()}`);
    try {
      const r = await get(agent, port, '/readyz', 2_000);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the gateway was not ready within ${opts.readyTimeoutMs ?? 30_000} ms:\n${tail()}`);
    }
    await sleep(100);
  }
  agent.destroy();
  return gw;
}

// ---- HTTP ------------------------------------------------------------------------------------------------
export interface HttpResult {
  status: number;
  /** Parsed JSON when the body is JSON, else the text. */
  body: any;
  ms: number;
}

export function keepAliveAgent(maxSockets = 16): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  onCleanup(() => agent.destroy());
  return agent;
}

/** One GET on 127.0.0.1; rejects only on a network error or timeout, never on an HTTP status. */
export function get(
  agent: http.Agent,
  port: number,
  path: string,
  timeoutMs = 60_000,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({ host: '127.0.0.1', port, path, agent, headers: { accept: 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const ms = performance.now() - t0;
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {} // not JSON: keep the text
        resolve({ status: res.statusCode ?? 0, body, ms });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms: GET ${path}`)));
    req.on('error', reject);
    req.end();
  });
}

/** GET that must answer 200. */
export async function get200(agent: http.Agent, port: number, path: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  const r = await get(agent, port, path, 60_000, headers);
  check(r.status === 200, `GET ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  return r;
}

// ---- figures ---------------------------------------------------------------------------------------------
/** Linear interpolation between closest ranks; sorted ascending. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface Summary {
  n: number;
  min: number;
  median: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarize(values: number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    min: s[0] ?? NaN,
    median: percentile(s, 0.5),
    p90: percentile(s, 0.9),
    p99: percentile(s, 0.99),
    max: s[s.length - 1] ?? NaN,
  };
}

export const f2 = (x: number) => x.toFixed(2);

export function formatSummary(label: string, s: Summary): string {
  return (
    `${label.padEnd(46)} n=${String(s.n).padStart(4)}  median ${f2(s.median).padStart(7)}  ` +
    `p90 ${f2(s.p90).padStart(7)}  p99 ${f2(s.p99).padStart(7)}  min ${f2(s.min).padStart(7)}  max ${f2(s.max).padStart(8)}  ms`
  );
}

/** VmRSS of a process, in MiB. */
export function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  check(m, `no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}
