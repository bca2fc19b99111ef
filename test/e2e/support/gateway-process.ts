// Starts the built gateway (dist/server.js) as a real process on a free port, the way an operator would.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
  /** Every log line so far. */
  logs: string[];
  /** Its state.dir: a fresh directory unless the config named one (a restart that must find the same state does). */
  stateDir: string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startGateway(config: object = {}, timeoutMs = 20_000): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'qga-e2e-'));
  const configFile = join(dir, 'gateway.json');
  // Development mode (no tokens) and no rate limit unless the test's config names its own auth or limits section.
  // Never the host's /var/lib/qga-gateway: a freeze one test's gateway left there would be thawed by another's.
  const state = { dir: join(dir, 'state') };
  // The events' address watcher (a guest-network-get-interfaces every 30 s per agent) only where a test asks for it
  // (its config names an events section): the other tests' agents get only their own commands.
  const events = { addressesPollMs: 0 };
  writeFileSync(
    configFile,
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      auth: { mode: 'none' },
      limits: { rateLimit: { max: 0 } },
      state,
      events,
      ...config,
    }),
  );
  const stateDir = (config as { state?: { dir?: string } }).state?.dir ?? state.dir;
  const child = spawn(process.execPath, ['dist/server.js', '--config', configFile], {
    env: { ...process.env, PORT: '', HOST: '', LIBVIRT_URI: '', LOG_LEVEL: 'info', STATE_DIRECTORY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  let buffered = '';
  const onData = (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    logs.push(...lines.filter(Boolean));
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start within ${timeoutMs} ms:\n${logs.join('\n')}`)), timeoutMs);
    const poll = setInterval(() => {
      for (const line of logs) {
        const m = /Server listening at (https?:\/\/127\.0\.0\.1:\d+)/.exec(line);
        if (m) {
          clearInterval(poll);
          clearTimeout(timer);
          resolve(m[1]!);
        }
      }
    }, 20);
    void exited.then((code) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} at start:\n${logs.join('\n')}`));
    });
  });

  // Ready means libvirt answered; the tests need that, so wait for it.
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${url}/readyz`).catch(() => null);
    if (res?.status === 200) break;
    if (Date.now() > deadline) throw new Error(`gateway not ready within ${timeoutMs} ms:\n${logs.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    child,
    logs,
    stateDir,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
