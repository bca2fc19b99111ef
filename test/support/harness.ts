// One set-up for the unit tests that run the whole gateway, in the style of fastify/demo's build(t): it starts what
// the test needs and registers its own clean-up with vitest (onTestFinished), so test files keep no afterEach of
// their own for it.
//
//   const { fake, gw, call } = await build({ domains: ['web1'], agent: handler, config: { rawCommands: { enabled: true } } });
//   const r = await call('GET', '/domains/web1/agent/ping');          // { status, body (parsed JSON), raw, headers }
//
// build() puts a fake libvirtd behind the gateway (the real wire protocol over a real socket);
// buildWithMemoryAgent() runs the gateway with no libvirt at all, its agent commands answered in memory by the same
// kind of agent (test/support/memory-agent-transport.ts). Both must be called inside a test or a beforeEach.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { onTestFinished } from 'vitest';
import { FakeLibvirtd, type AgentHandler, type AgentLogEntry, type FakeDomain, type FakeLibvirtdOptions } from './fake-libvirtd.js';
import { injectAny } from './inject.js';
import { MemoryAgentTransport } from './memory-agent-transport.js';
import { startTestGateway, type GatewayOverrides, type TestGateway } from './test-gateway.js';

/** A domain by name (running, agent connected) or as FakeLibvirtd.addDomain takes it. */
export type DomainSpec = string | (Partial<FakeDomain> & { name: string });

/** An answer of app.inject, read the way the tests read it. */
export interface Reply {
  status: number;
  /** The body as JSON; null when it is empty. Like res.json(), it throws for a body that is not JSON. */
  readonly body: any;
  /** The body as text. */
  raw: string;
  headers: Record<string, string | string[] | number | undefined>;
}

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One request through app.inject: payload as JSON (an object), text or bytes; headers as given. */
export async function request(
  gw: TestGateway,
  method: Method,
  url: string,
  payload?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const res = await injectAny(gw.app, {
    method,
    url,
    headers,
    ...(payload === undefined ? {} : { payload: payload as InjectOptions['payload'] }),
  });
  return {
    status: res.statusCode,
    get body() {
      return res.body ? res.json() : null;
    },
    raw: res.body,
    headers: res.headers,
  };
}

/** Commands that reached the agent, less the guest-info the gateway asks once per domain to learn what it offers. */
export function sentCommands(log: readonly AgentLogEntry[]): AgentLogEntry[] {
  return log.filter((e) => e.execute !== 'guest-info');
}

export interface BuildOptions {
  /** Domains the fake libvirtd has before the gateway starts. */
  domains?: DomainSpec[];
  /** The fake's agent (FakeLibvirtd.agentHandler); the fake's default agent otherwise. */
  agent?: AgentHandler;
  /** The gateway's configuration, over startTestGateway's defaults. */
  config?: GatewayOverrides;
  /** How to start the fake libvirtd (TCP, TLS, authentication, limits...). */
  libvirtd?: FakeLibvirtdOptions;
  /** A fake libvirtd of the test's own (shared across tests): used as it is, and not stopped by the harness. */
  fake?: FakeLibvirtd;
  /** false: start the fake only; the test starts gateways with startGateway(). */
  gateway?: boolean;
  /** The libvirt URI the gateway gets (default: the fake's). */
  uri?: string;
  /** Wait for the gateway's libvirt connections before answering (default true). */
  waitForLibvirt?: boolean;
  /** Runs after the test, once the gateways are closed and the fake stopped (temp dirs, other sockets). */
  after?: () => void | Promise<void>;
}

export interface Harness {
  readonly fake: FakeLibvirtd;
  /** The gateway started last. */
  readonly gw: TestGateway;
  call(method: Method, url: string, payload?: unknown, headers?: Record<string, string>): Promise<Reply>;
  /** Commands that reached the fake's agent, less guest-info. */
  sent(): AgentLogEntry[];
  /** Starts another gateway against the same fake (the earlier ones stay up unless closed); closed after the test too. */
  startGateway(config?: GatewayOverrides, opts?: { uri?: string; waitForLibvirt?: boolean }): Promise<TestGateway>;
}

/** A fake libvirtd with these domains and agent, and (unless gateway: false) a gateway in front of it. */
export async function build(opts: BuildOptions = {}): Promise<Harness> {
  const fake = opts.fake ?? (await FakeLibvirtd.start(opts.libvirtd));
  const gateways: TestGateway[] = [];
  onTestFinished(async () => {
    for (const g of gateways.reverse()) await g.close();
    if (!opts.fake) await fake.stop();
    await opts.after?.();
  });
  for (const d of opts.domains ?? []) fake.addDomain(typeof d === 'string' ? { name: d } : d);
  if (opts.agent) fake.agentHandler = opts.agent;
  const startGateway = async (config: GatewayOverrides = {}, o: { uri?: string; waitForLibvirt?: boolean } = {}) => {
    const gw = await startTestGateway(o.uri ?? fake.uri, config, o.waitForLibvirt ?? true);
    gateways.push(gw);
    return gw;
  };
  if (opts.gateway !== false) await startGateway(opts.config, { uri: opts.uri, waitForLibvirt: opts.waitForLibvirt });
  const current = () => {
    const gw = gateways.at(-1);
    if (!gw) throw new Error('harness: no gateway started (gateway: false); call startGateway() first');
    return gw;
  };
  return {
    fake,
    get gw() {
      return current();
    },
    call: (method, url, payload, headers) => request(current(), method, url, payload, headers),
    sent: () => sentCommands(fake.agentLog),
    startGateway,
  };
}

let thisTest: Promise<Harness> | null = null;

/**
 * build(opts) once per test: later calls within the same test answer the same harness (opts ignored), for a test
 * that starts several gateways, one after the other, against one fake.
 */
export function buildOncePerTest(opts: BuildOptions = {}): Promise<Harness> {
  if (!thisTest) {
    thisTest = build(opts);
    onTestFinished(() => {
      thisTest = null;
    });
  }
  return thisTest;
}

export interface MemoryBuildOptions {
  /** The domains, by name: each answers under the host "local", running, its agent answered in memory. */
  domains?: string[];
  /** The agent (the fake libvirtd's default agent otherwise). */
  agent?: AgentHandler;
  /** The gateway's configuration, over startTestGateway's defaults. */
  config?: GatewayOverrides;
}

export interface MemoryHarness {
  readonly gw: TestGateway;
  /** The in-memory transport: its log, its handler (replaceable), the domains as the handler sees them. */
  readonly agent: MemoryAgentTransport;
  call(method: Method, url: string, payload?: unknown, headers?: Record<string, string>): Promise<Reply>;
  /** Commands that reached the agent, less guest-info. */
  sent(): AgentLogEntry[];
}

/**
 * The gateway with no libvirt and no agent on any wire: its domains are agentSockets entries (one host, "local"),
 * whose socket files exist, bound but never connected to, so that the gateway takes the domains for running; every
 * agent command goes to a MemoryAgentTransport (the Gateway's agentTransport option).
 */
export async function buildWithMemoryAgent(opts: MemoryBuildOptions = {}): Promise<MemoryHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'qga-memory-'));
  const servers: Server[] = [];
  let gw: TestGateway | null = null;
  onTestFinished(async () => {
    await gw?.close();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    rmSync(dir, { recursive: true, force: true });
  });
  const sockets = [];
  for (const [i, name] of (opts.domains ?? []).entries()) {
    const path = join(dir, `${i}.sock`);
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(path, resolve));
    servers.push(server);
    sockets.push({ name, path });
  }
  const agent = new MemoryAgentTransport(opts.agent);
  const config = opts.config ?? {};
  gw = await startTestGateway(
    'qemu:///system',
    { ...config, libvirt: { ...config.libvirt, enabled: false }, agentSockets: { host: 'local', ...config.agentSockets, sockets } },
    false,
    { agentTransport: agent },
  );
  const started = gw;
  return {
    gw: started,
    agent,
    call: (method, url, payload, headers) => request(started, method, url, payload, headers),
    sent: () => sentCommands(agent.log),
  };
}
