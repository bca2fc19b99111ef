// The whole gateway (config, libvirt pool, services, Fastify app) in process, against a fake libvirtd.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { Gateway, type GatewayOptions } from '../../src/gateway.js';
import { buildApp } from '../../src/http/app.js';
import { waitFor } from './fake-libvirtd/faults.js';

export interface TestGateway {
  app: FastifyInstance;
  gateway: Gateway;
  /** JSON log lines written so far. */
  logs: Record<string, unknown>[];
  /** Audit lines written so far. */
  audit: Record<string, unknown>[];
  /** Closes the app (and with it the gateway); again later: the same promise. */
  close(): Promise<void>;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };
export type GatewayOverrides = DeepPartial<ConfigInput>;

export async function startTestGateway(
  uri: string,
  overrides: GatewayOverrides = {},
  waitForLibvirt = true,
  options: GatewayOptions = {},
): Promise<TestGateway> {
  const config = parseConfig({
    // Development mode unless a test asks for tokens: most tests are about what happens past authentication.
    auth: { mode: 'none' },
    // No rate limits either, unless asked: fuzzing and load tests send thousands of requests a minute, and the
    // auth tests thousands of refusals.
    limits: { rateLimit: { max: 0 }, unauthenticated: { max: 0 } },
    // Each gateway its own state directory: never the host's /var/lib/qga-gateway, never another test's.
    state: { dir: mkdtempSync(join(tmpdir(), 'qga-state-')) },
    ...overrides,
    // Every answer of every test checked against its schema, and the compiled serializer's bytes against zod's.
    openapi: { checkAnswers: true, ...overrides.openapi },
    // No guest-network-get-interfaces of the events' address watcher behind a test's back: the tests count commands.
    events: { addressesPollMs: 0, ...overrides.events },
    libvirt: { uri, connections: 2, keepaliveIntervalMs: 0, backoffInitialMs: 20, backoffMaxMs: 200, ...overrides.libvirt },
  });
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const gateway = new Gateway(config, log, options);
  const audit: Record<string, unknown>[] = [];
  const auditLog = pino({ level: 'info' }, { write: (line: string) => void audit.push(JSON.parse(line) as Record<string, unknown>) });
  const app = await buildApp(gateway, log, auditLog);
  app.addHook('onClose', async () => gateway.close(config.shutdownGraceMs));
  await gateway.start();
  if (waitForLibvirt) {
    await Promise.all(gateway.hosts.list.map((h) => h.pool.waitUntilUp(5000)));
    // And libvirt's events registered: an event the fake emits before that reaches no one, as with libvirtd.
    await waitFor(() => gateway.hosts.list.every((h) => h.pool.eventsSubscribed), 5000, "the gateway's libvirt event subscriptions");
  }
  await app.ready();
  let closing: Promise<void> | undefined;
  return { app, gateway, logs, audit, close: () => (closing ??= app.close()) };
}
