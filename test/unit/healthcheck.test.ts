// The container's HEALTHCHECK (src/cli/healthcheck.ts, src/cli/health-probe.ts) against real listening gateways
// (fake libvirtd behind them): it must reach the gateway wherever its configuration makes it listen (a wildcard, a
// specific address, IPv6), over HTTPS with listen.tls (client certificates required too), and through
// auth.protectPublic; and it must say unhealthy when nothing answers, when the answer is late, or an error.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { probeHealth, probeHost } from '../../src/cli/health-probe.js';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { build } from '../support/harness.js';
import type { GatewayOverrides } from '../support/test-gateway.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'qgw-healthcheck-'));
  const cert = (name: string, cn: string, extra: string[]) =>
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        ...['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`), '-subj', `/CN=${cn}`, '-days', '2'],
        ...extra,
      ],
      { stdio: 'ignore' },
    );
  cert('ca', 'qgw healthcheck CA', []);
  // Named for nothing the probe asks: it connects by address and does not verify.
  const signed = ['-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-addext', 'basicConstraints=critical,CA:FALSE'];
  cert('server', 'gateway.example.org', signed);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tls = (clientCerts: 'off' | 'required') => ({
  certFile: join(dir, 'server.crt'),
  keyFile: join(dir, 'server.key'),
  caFile: join(dir, 'ca.crt'),
  clientCerts,
});

/** A gateway listening on host (a free port), with this configuration; closed after the test. Its port. */
async function listening(host: string, config: GatewayOverrides = {}): Promise<number> {
  const { gw } = await build({ domains: ['web1'], config });
  await gw.app.listen({ host, port: 0 });
  return (gw.app.server.address() as AddressInfo).port;
}

/** The configuration the probe reads, as loadConfig would give it in the container. */
const probeConfig = (listen: ConfigInput['listen'], auth: ConfigInput['auth'] = {}) => parseConfig({ listen, auth });

describe('where it connects', () => {
  it('to the loopback of the same family for a wildcard listener, else to the listener itself', () => {
    expect(probeHost('0.0.0.0')).toBe('127.0.0.1');
    expect(probeHost('::')).toBe('::1');
    expect(probeHost('127.0.0.2')).toBe('127.0.0.2');
    expect(probeHost('10.1.2.3')).toBe('10.1.2.3');
    expect(probeHost('gateway.example.org')).toBe('gateway.example.org');
  });

  it('0.0.0.0: healthy through 127.0.0.1', async () => {
    const port = await listening('0.0.0.0');
    expect(await probeHealth(probeConfig({ host: '0.0.0.0', port }))).toEqual({
      healthy: true,
      detail: `http://127.0.0.1:${port}/healthz: HTTP 200`,
    });
  });

  it(':: healthy through ::1', async () => {
    const port = await listening('::');
    expect(await probeHealth(probeConfig({ host: '::', port }))).toEqual({
      healthy: true,
      detail: `http://[::1]:${port}/healthz: HTTP 200`,
    });
  });

  it('a specific address (127.0.0.2, where 127.0.0.1 finds nothing): healthy through that address', async () => {
    const port = await listening('127.0.0.2');
    expect(await probeHealth(probeConfig({ host: '127.0.0.2', port }))).toEqual({
      healthy: true,
      detail: `http://127.0.0.2:${port}/healthz: HTTP 200`,
    });
    // What the image's former check did: ask 127.0.0.1 whatever HOST said.
    expect((await probeHealth(probeConfig({ host: '127.0.0.1', port }))).healthy).toBe(false);
  });
});

describe('what counts as an answer', () => {
  it('listen.tls: healthy over HTTPS, the certificate not verified (not made for the address asked)', async () => {
    const port = await listening('127.0.0.1', { listen: { tls: tls('off') } } as GatewayOverrides);
    expect(await probeHealth(probeConfig({ host: '0.0.0.0', port, tls: tls('off') }))).toEqual({
      healthy: true,
      detail: `https://127.0.0.1:${port}/healthz: HTTP 200`,
    });
    // Plain HTTP to a TLS listener gets no HTTP answer.
    expect((await probeHealth(probeConfig({ host: '127.0.0.1', port }))).healthy).toBe(false);
  });

  it('listen.tls with client certificates required: the TLS alert asking for one is an answer', async () => {
    const port = await listening('127.0.0.1', { listen: { tls: tls('required') } } as GatewayOverrides);
    const r = await probeHealth(probeConfig({ host: '127.0.0.1', port, tls: tls('required') }));
    expect(r).toEqual({ healthy: true, detail: `https://127.0.0.1:${port}/healthz: TLS asks a client certificate` });
  });

  it('auth.protectPublic: 401 on /healthz is the gateway answering; without protectPublic a 401 is not healthy', async () => {
    const auth = { mode: 'tokens' as const, protectPublic: true };
    const port = await listening('127.0.0.1', { auth });
    expect(await probeHealth(probeConfig({ host: '127.0.0.1', port }, auth))).toEqual({
      healthy: true,
      detail: `http://127.0.0.1:${port}/healthz: HTTP 401`,
    });
    expect(await probeHealth(probeConfig({ host: '127.0.0.1', port }, { mode: 'tokens' }))).toMatchObject({ healthy: false });
  });
});

/** A server of the test's own on 127.0.0.1, closed after the test with the connections it holds: its port. */
async function serve(server: Server | http.Server): Promise<number> {
  const connections = new Set<Socket>();
  server.on('connection', (socket: Socket) => connections.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(async () => {
    for (const socket of connections) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

describe('unhealthy', () => {
  it('nothing listening: connection refused', async () => {
    // A port that was free a moment ago, and is closed again.
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const r = await probeHealth(probeConfig({ host: '127.0.0.1', port: closed }));
    expect(r).toEqual({ healthy: false, detail: `http://127.0.0.1:${closed}/healthz: connect ECONNREFUSED 127.0.0.1:${closed}` });
  });

  it('a listener that accepts and never answers: not healthy once the deadline passes', async () => {
    const port = await serve(createServer());
    const started = performance.now();
    const r = await probeHealth(probeConfig({ host: '127.0.0.1', port }), 300);
    expect(r).toEqual({ healthy: false, detail: `http://127.0.0.1:${port}/healthz: no answer within 300 ms` });
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('a 500 or a 503', async () => {
    for (const status of [500, 503]) {
      const port = await serve(http.createServer((_req, res) => res.writeHead(status).end()));
      expect(await probeHealth(probeConfig({ host: '127.0.0.1', port }))).toEqual({
        healthy: false,
        detail: `http://127.0.0.1:${port}/healthz: HTTP ${status}`,
      });
    }
  });
});

describe('the command (node dist/cli/healthcheck.js)', () => {
  /** Runs src/cli/healthcheck.ts as the image runs its build: exit code and output. */
  function healthcheck(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/healthcheck.ts'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b));
      child.stderr.on('data', (b: Buffer) => (out += b));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
  }

  it('reads the config file and HOST/PORT as the gateway does: exit 0 when healthy, 1 when not', async () => {
    const port = await listening('127.0.0.2', { auth: { mode: 'tokens', protectPublic: true } });
    const configFile = join(dir, 'config.yaml');
    writeFileSync(configFile, 'listen:\n  host: 0.0.0.0\nauth:\n  mode: tokens\n  protectPublic: true\n');
    const healthy = await healthcheck({ QGA_GATEWAY_CONFIG: configFile, HOST: '127.0.0.2', PORT: String(port) });
    expect(healthy).toEqual({ code: 0, out: `healthy: http://127.0.0.2:${port}/healthz: HTTP 401\n` });
    const wrongHost = await healthcheck({ QGA_GATEWAY_CONFIG: configFile, PORT: String(port) });
    expect(wrongHost.code).toBe(1);
    expect(wrongHost.out).toMatch(new RegExp(`^unhealthy: http://127\\.0\\.0\\.1:${port}/healthz: connect ECONNREFUSED`));
  });

  it('a configuration that does not load is unhealthy, with its error', async () => {
    const r = await healthcheck({ PORT: 'eighty' });
    expect(r).toEqual({ code: 1, out: "unhealthy: environment variable PORT: not a number: 'eighty'\n" });
  });
});
