// The configuration: one zod schema, from which the Config type and every default come.
import { z } from 'zod';

const ms = (max: number) => z.number().int().min(1).max(max);

export const COMMAND_KINDS = ['quick', 'query', 'slow'] as const;
export type CommandKind = (typeof COMMAND_KINDS)[number];

export const configSchema = z.strictObject({
  listen: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
    })
    .prefault({}),
  libvirt: z
    .strictObject({
      /** qemu:///system, qemu+unix:///system?socket=/path, qemu+tcp://host[:port]/system */
      uri: z.string().min(1).default('qemu:///system'),
      /** Overrides the unix socket path derived from the URI. */
      socketPath: z.string().min(1).optional(),
      /** Connections kept open; libvirtd runs at most 5 calls per connection at once. */
      connections: z.number().int().min(1).max(32).default(3),
      /** Calls in flight per connection; below libvirtd's max_client_requests (5) so it keeps reading ours. */
      maxCallsPerConnection: z.number().int().min(1).max(1000).default(4),
      connectTimeoutMs: ms(120_000).default(5_000),
      /** Silence after which the gateway pings libvirtd; 0 turns its own pings off. */
      keepaliveIntervalMs: z.number().int().min(0).max(600_000).default(5_000),
      keepaliveCount: z.number().int().min(1).max(100).default(5),
      backoffInitialMs: ms(60_000).default(250),
      backoffMaxMs: ms(600_000).default(10_000),
    })
    .prefault({}),
  agent: z
    .strictObject({
      /** Commands waiting per domain (beside the one running); past it: 503 agent_queue_full with Retry-After. */
      queueDepth: z.number().int().min(0).max(10_000).default(32),
      /** Default deadline per kind of command, queue wait included. */
      timeoutsMs: z
        .strictObject({
          quick: ms(3_600_000).default(5_000),
          query: ms(3_600_000).default(10_000),
          slow: ms(3_600_000).default(60_000),
        })
        .prefault({}),
      /** The largest deadline a request may ask for with ?timeoutMs=. */
      maxTimeoutMs: ms(3_600_000).default(120_000),
      /** How long a queue slot stays held after a deadline, waiting for libvirt to give the call up. */
      abandonGraceMs: ms(600_000).default(10_000),
      retryAfterSeconds: z.number().int().min(1).max(3600).default(2),
    })
    .prefault({}),
  domains: z
    .strictObject({
      /** Lookups (name or UUID to domain) are cached this long; lifecycle events invalidate them sooner. */
      cacheTtlMs: z.number().int().min(0).max(3_600_000).default(30_000),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  /** On SIGTERM/SIGINT: how long in-flight calls get to finish before the process exits anyway. */
  shutdownGraceMs: ms(600_000).default(30_000),
  openapi: z
    .strictObject({
      /** Serve Swagger UI at /docs (the document itself is always at /openapi.json). */
      docs: z.boolean().default(true),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
