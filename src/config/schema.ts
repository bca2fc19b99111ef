// src/config: the configuration, imported by every other part and importing none of them. This file is the one zod
// schema, from which the Config type and every default come; its sections that need more than a few lines have
// their own files (agent-sockets.ts; identities.ts with scopes.ts and loader-env.ts for what an identity may be
// given), fields.ts holds shared field schemas, and load.ts reads the file and the environment.
import { z } from 'zod';
import { keystoneConfigSchema } from './keystone.js';
import { agentSocketsConfigSchema } from './agent-sockets.js';
import { domainPatternSchema, identityNameSchema, policiesConfigSchema } from './identities.js';
import { SCOPES } from './scopes.js';
import { hostNameSchema, ms } from './fields.js';
import { originPatternProblem } from './cors-origins.js';

export const COMMAND_KINDS = ['quick', 'query', 'slow'] as const;
export type CommandKind = (typeof COMMAND_KINDS)[number];

export const configSchema = z.strictObject({
  listen: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
      /** HTTPS instead of HTTP; the files are read once at start-up (a restart picks up renewed certificates). */
      tls: z
        .strictObject({
          certFile: z.string().min(1),
          keyFile: z.string().min(1),
          /** CA (PEM) that signs accepted client certificates; needed unless clientCerts is off. */
          caFile: z.string().min(1).optional(),
          /** optional: a client certificate is asked for, and one that verifies proves an identity; required: no handshake without one. */
          clientCerts: z.enum(['off', 'optional', 'required']).default('off'),
        })
        .optional(),
    })
    .prefault({}),
  libvirt: z
    .strictObject({
      /** qemu:///system, qemu+unix:///system?socket=/path, qemu+tcp://host[:port]/system */
      uri: z.string().min(1).default('qemu:///system'),
      /** false: no libvirt at all (only agentSockets domains), e.g. on a Proxmox VE or plain QEMU host. */
      enabled: z.boolean().default(true),
      /** Overrides the unix socket path derived from the URI. */
      socketPath: z.string().min(1).optional(),
      /**
       * Several hypervisors: each libvirt daemon by name. Absent: one host named "local" from uri/socketPath.
       * The settings below (connections, keepalive, backoff) apply to every host.
       */
      hosts: z
        .array(
          z.strictObject({
            /** How answers and qualified domain ids (host:name) name this host. */
            name: hostNameSchema,
            /** qemu:///system, qemu+unix:///system?socket=..., qemu+tcp://hv1/system, qemu+tls://hv1/system */
            uri: z.string().min(1),
            socketPath: z.string().min(1).optional(),
            /** qemu+tls: the client certificate, its key and the CA that signs the daemon's certificate (PEM files, read at each connect). */
            tls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1), caFile: z.string().min(1) }).optional(),
            /** This host's connection count, instead of libvirt.connections. */
            connections: z.number().int().min(1).max(32).optional(),
          }),
        )
        .max(256)
        .default([]),
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
  /** Guest agents reached without libvirt, over their own sockets (src/config/agent-sockets.ts). */
  agentSockets: agentSocketsConfigSchema,
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
  /** Programs run in the guest (guest-exec) and the results the gateway keeps after the agent reaps them. */
  exec: z
    .strictObject({
      /** Finished processes' results kept (all domains together); the oldest go first. */
      resultCacheSize: z.number().int().min(0).max(100_000).default(1_000),
      /** How long a finished process's result stays readable after the agent has reaped it. */
      resultCacheTtlMs: z.number().int().min(0).max(86_400_000).default(600_000),
      /** The longest a request may wait for a process to exit (wait.timeoutMs, ?waitMs=). */
      maxWaitMs: ms(3_600_000).default(120_000),
      /** Largest stdin (raw bytes) sent with guest-exec; base64 grows it 4/3, and qemu-ga 7.2 misreads commands near 256 KiB. */
      maxInputBytes: z.number().int().min(0).max(131_072).default(131_072),
    })
    .prefault({}),
  /** POST /domains/{domain}/agent/commands: any agent command as JSON, for what the typed resources lack. */
  rawCommands: z
    .strictObject({
      /** Off by default: the endpoint answers 403 command_forbidden until this is true. */
      enabled: z.boolean().default(false),
      /** Further commands refused (beside those the gateway always refuses: guest-sync*, no-reply and freeze commands, guest-exec-status). */
      deny: z.array(z.string().min(1)).default([]),
    })
    .prefault({}),
  files: z
    .strictObject({
      /** Bytes per guest-file-read/-write: base64 makes 2 MiB a 2.7 MiB RPC string, under libvirt's 4 MiB cap. */
      chunkBytes: z
        .number()
        .int()
        .min(4096)
        .max(2 * 1024 * 1024)
        .default(1024 * 1024),
      /** Bytes per guest-file-write: qemu-ga 7.2 garbles a command of about 256 KiB or more (measured), so at most 128 KiB. */
      writeChunkBytes: z
        .number()
        .int()
        .min(4096)
        .max(128 * 1024)
        .default(128 * 1024),
      /** The largest upload (PUT) body; past it 413, and nothing past the limit is written. */
      maxUploadBytes: z
        .number()
        .int()
        .min(1)
        .max(Number.MAX_SAFE_INTEGER)
        .default(1024 * 1024 * 1024),
      /** Deadline of each file command (open, one chunk, seek, flush), queue wait included; ?timeoutMs= overrides it. */
      chunkTimeoutMs: ms(3_600_000).default(30_000),
      /** Deadline of guest-file-close, which runs on every path, even after the client has gone. */
      closeTimeoutMs: ms(600_000).default(10_000),
      /** How long a guest-file-close refused because the guest is frozen is retried (every 2 s); past freeze.maxTimeoutMs. */
      closeRetryMs: ms(3_600_000).default(330_000),
    })
    .prefault({}),
  /** POST /domains/{domain}/fsfreeze: every freeze carries a deadline after which the gateway thaws on its own. */
  freeze: z
    .strictObject({
      /** The freeze deadline when the request names none (timeoutMs in the body). */
      defaultTimeoutMs: ms(3_600_000).default(30_000),
      /** The longest freeze a request may ask for: frozen file systems hang the guest's writers. */
      maxTimeoutMs: ms(3_600_000).default(300_000),
    })
    .prefault({}),
  /**
   * What the gateway must remember across its own death: the freezes it holds (thawed at start-up when their
   * deadline passed, re-armed otherwise) and the temporary files of uploads in flight (removed at start-up).
   */
  state: z
    .strictObject({
      /** Created (mode 0700) when missing; a freeze is refused (503) when its record cannot be written here. */
      dir: z.string().min(1).default('/var/lib/qga-gateway'),
    })
    .prefault({}),
  /** GET /addresses: every running domain's guest IPs in one call. */
  addresses: z
    .strictObject({
      /** One deadline for the whole fan-out, queue waits included; ?timeoutMs= overrides it. */
      timeoutMs: ms(600_000).default(5_000),
      /** How long a domain's answer (addresses or error) is served from cache; agent and lifecycle events drop it sooner. */
      cacheTtlMs: z.number().int().min(0).max(3_600_000).default(10_000),
      /**
       * Domains asked at once by the fan-out, over every caller together; the others wait their turn under the same
       * deadline (still waiting at it: deadline_exceeded, never sent). Bounds the burst a fleet-wide call puts on the
       * gateway, the agents and the host's CPU, so that requests to single domains keep getting answered meanwhile.
       */
      concurrency: z.number().int().min(1).max(10_000).default(16),
      /**
       * A domain that has not answered within this gives its place in `concurrency` to the next one (its answer is still
       * awaited until the deadline): slow or hung agents cost the gateway nothing while they wait, and must not hold the
       * fan-out back.
       */
      slotHoldMs: z.number().int().min(1).max(600_000).default(250),
    })
    .prefault({}),
  /** GET /events: a Server-Sent Events stream of domain, agent, address and host events (src/events). */
  events: z
    .strictObject({
      /** false: no /events route, no event sources and no address polling at all. */
      enabled: z.boolean().default(true),
      /** Events kept in memory for Last-Event-ID to resume from; an older id gets a `reset` event instead. */
      bufferSize: z.number().int().min(1).max(1_000_000).default(1000),
      /** Streams open at once, over all clients; one more is refused with 503 too_many_streams. */
      maxClients: z.number().int().min(1).max(100_000).default(1000),
      /** A `: keep-alive` comment after this much silence on a stream, so that proxies keep idle streams open. */
      heartbeatMs: ms(3_600_000).default(15_000),
      /**
       * Each connected agent's interfaces are read again this often (one command per domain per interval, spread
       * over it), besides once when its agent connects; an `addresses` event when they changed. 0: never read.
       */
      addressesPollMs: z.number().int().min(0).max(86_400_000).default(30_000),
      /**
       * Bytes a stream may have written but not yet taken by its client (the gateway's buffers and the socket's). Past
       * it the client is too slow: it gets an `overflow` event and is disconnected, rather than memory growing.
       */
      clientQueueBytes: z.number().int().min(1024).max(67_108_864).default(1_048_576),
    })
    .prefault({}),
  /** Who may call the gateway. On by default: a gateway that runs programs in every guest is root on them all. */
  auth: z
    .strictObject({
      /** tokens: a bearer token on every route but the public ones. none: development only, and only on loopback. */
      mode: z.enum(['tokens', 'none']).default('tokens'),
      identities: z
        .array(
          z.strictObject({
            name: identityNameSchema,
            /** SHA-256 (hex) of the token: `npm run token` prints a new token and this hash. The token itself is never stored. */
            tokenSha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the 64 hex digits of a SHA-256'),
            scopes: z.array(z.enum(SCOPES)).min(1),
            /**
             * The domains this identity may touch (src/auth/domain-patterns.ts, src/config/identities.ts): name globs ('*', '?', case-sensitive),
             * full UUIDs, 'uuid:' UUID patterns, 'host:' followed by either.
             */
            domains: z.array(domainPatternSchema).min(1).default(['*']),
            /** Guest path (files read/write), exec and raw-command allow/deny lists; absent: scopes alone decide. */
            policies: policiesConfigSchema.optional(),
            /**
             * SHA-256 fingerprints (hex, colons allowed: `openssl x509 -noout -fingerprint -sha256`) of client
             * certificates that prove this identity (listen.tls.clientCerts).
             */
            clientCertFingerprints: z
              .array(
                z
                  .string()
                  .transform((f) => f.replace(/:/g, '').toLowerCase())
                  .pipe(z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 fingerprint: 64 hex digits')),
              )
              .default([]),
            /** This identity's own request rate, instead of limits.rateLimit (a busy automation account, say). */
            rateLimit: z
              .strictObject({ max: z.number().int().min(1).max(1_000_000), timeWindowMs: ms(86_400_000).default(60_000) })
              .optional(),
          }),
        )
        .default([]),
      /**
       * A YAML or JSON file holding more identities (a list, same fields as identities), e.g. a mounted
       * Kubernetes Secret; read at start-up and checked with the rest.
       */
      identitiesFile: z.string().min(1).optional(),
      /** Ask a token on /healthz, /readyz, /openapi.json and /docs too (with any scope). */
      protectPublic: z.boolean().default(false),
      /** OpenStack Keystone tokens (X-Auth-Token) as identities too (src/config/keystone.ts); off when absent. */
      keystone: keystoneConfigSchema,
    })
    .prefault({}),
  /** Every state-changing call and every refusal, one JSON line each, apart from the request log. */
  audit: z
    .strictObject({
      /** stderr, stdout, off, or an absolute file path (appended to; created with its directory). */
      destination: z
        .union([z.enum(['stderr', 'stdout', 'off']), z.string().regex(/^\//, 'must be stderr, stdout, off or an absolute path')])
        .default('stderr'),
    })
    .prefault({}),
  /** Guard rails against one caller (or a slow one) taking the gateway for itself. */
  limits: z
    .strictObject({
      /** Requests per identity (per client address on public routes without a token) per window; past it 429 rate_limited. */
      rateLimit: z
        .strictObject({
          /** 0 turns rate limiting off. */
          max: z.number().int().min(0).max(1_000_000).default(600),
          timeWindowMs: ms(86_400_000).default(60_000),
        })
        .prefault({}),
      /**
       * Refusals of requests without a valid identity (401, or two Authorization headers) per client address per
       * window; past it 429 rate_limited, and one audit line instead of one per refusal. A valid token is never
       * refused for its address's refusals. Counted in memory, for at most 10,000 addresses at once.
       */
      unauthenticated: z
        .strictObject({
          /** 0 turns this limit off. */
          max: z.number().int().min(0).max(1_000_000).default(30),
          timeWindowMs: ms(86_400_000).default(60_000),
        })
        .prefault({}),
      /** Largest JSON body; 256 KiB because exec's stdin (exec.maxInputBytes, 128 KiB) arrives base64 in JSON. Uploads have files.maxUploadBytes. */
      bodyBytes: z
        .number()
        .int()
        .min(1024)
        .max(16 * 1024 * 1024)
        .default(256 * 1024),
      /** Idle socket (no bytes either way) closed after this; above the longest wait for the agent (agent.maxTimeoutMs, exec.maxWaitMs). 0: never. */
      connectionTimeoutMs: z.number().int().min(0).max(86_400_000).default(600_000),
      /** Whole request (headers and body) must arrive within this; an hour lets a 1 GiB upload through at 300 KiB/s. Downloads are not counted. 0: no limit. */
      requestTimeoutMs: z.number().int().min(0).max(86_400_000).default(3_600_000),
      /** The request line and headers must arrive within this (at most requestTimeoutMs): a client trickling headers holds a socket for nothing. */
      headersTimeoutMs: ms(3_600_000).default(30_000),
      /** Idle keep-alive connection closed after this. */
      keepAliveTimeoutMs: ms(3_600_000).default(72_000),
    })
    .prefault({}),
  log: z
    .strictObject({
      /** No level prints a token, a password, or file or stdin content (src/logger.ts, src/http/client-error.ts). */
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  /** On SIGTERM/SIGINT: how long in-flight calls get to finish before the process exits anyway. */
  shutdownGraceMs: ms(600_000).default(30_000),
  openapi: z
    .strictObject({
      /** Serve Swagger UI at /docs (the document itself is always at /openapi.json). */
      docs: z.boolean().default(true),
      /**
       * Check every answer against its route's schema (zod) and that the compiled serializer wrote the same bytes
       * (src/http/serializer.ts); a mismatch is a 500. For tests and for chasing a suspect answer: it costs CPU on
       * every request. Environment: QGA_GATEWAY_CHECK_ANSWERS=1.
       */
      checkAnswers: z.boolean().default(false),
    })
    .prefault({}),
  /** Cross-origin calls from browser pages (src/config/cors-origins.ts, src/http/cors.ts). Off until origins names one. */
  cors: z
    .strictObject({
      /** Origins whose pages may call the API: https://ops.example.org, https://*.example.org, http://localhost:*, or '*'. */
      origins: z
        .array(
          z
            .string()
            .max(1024)
            .superRefine((p, ctx) => {
              const problem = originPatternProblem(p);
              if (problem) ctx.addIssue({ code: 'custom', message: problem });
            }),
        )
        .max(256)
        .default([]),
      /** Access-Control-Allow-Credentials: only for client certificates (tokens need none); never with '*'. */
      credentials: z.boolean().default(false),
      /** How long a browser may reuse a preflight's answer (Access-Control-Max-Age). */
      maxAgeSeconds: z.number().int().min(0).max(86_400).default(600),
    })
    .superRefine((c, ctx) => {
      if (c.credentials && c.origins.includes('*'))
        ctx.addIssue({
          code: 'custom',
          path: ['origins'],
          message: "'*' (any origin) together with cors.credentials would let every site use the visitor's client certificate",
        });
    })
    .prefault({}),
  /** The fleet view at /ui: static pages that call the public API with the visitor's token. */
  ui: z
    .strictObject({
      /** false: no /ui routes (404). */
      enabled: z.boolean().default(true),
    })
    .prefault({}),
  /** GET /metrics: Prometheus text exposition (src/metrics). */
  metrics: z
    .strictObject({
      /** false: no /metrics route (404, absent from the API document) and no request counting. */
      enabled: z.boolean().default(true),
      /** true: /metrics needs no token. false: a token whose identity has the `metrics` scope ('admin' alone is not enough). */
      public: z.boolean().default(false),
      /** Adds host and domain labels to the agent command histogram and the queue depth: one series per domain, so off by default. */
      perDomainLabels: z.boolean().default(false),
    })
    .prefault({}),
});

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Rules across sections: no unauthenticated listener beyond loopback, no duplicate identities. */
export const checkedConfigSchema = configSchema.superRefine((c, ctx) => {
  if (c.auth.mode === 'none' && !LOOPBACK.test(c.listen.host)) {
    ctx.addIssue({
      code: 'custom',
      path: ['auth', 'mode'],
      message: `'none' (no authentication) is allowed only on a loopback listen.host, not ${c.listen.host}`,
    });
  }
  // An idle socket is cut even while its answer is awaited: it must outlast the longest silent wait a request may ask for.
  const longestWait = Math.max(c.agent.maxTimeoutMs, c.exec.maxWaitMs, c.files.chunkTimeoutMs, c.addresses.timeoutMs);
  if (c.limits.connectionTimeoutMs > 0 && c.limits.connectionTimeoutMs <= longestWait) {
    ctx.addIssue({
      code: 'custom',
      path: ['limits', 'connectionTimeoutMs'],
      message:
        `must exceed the longest wait a request may ask for (${longestWait} ms: agent.maxTimeoutMs, exec.maxWaitMs, ` +
        'files.chunkTimeoutMs, addresses.timeoutMs), or be 0',
    });
  }
  if (c.listen.tls && c.listen.tls.clientCerts !== 'off' && !c.listen.tls.caFile) {
    ctx.addIssue({
      code: 'custom',
      path: ['listen', 'tls', 'caFile'],
      message: `clientCerts '${c.listen.tls.clientCerts}' needs the CA that signs client certificates`,
    });
  }
  const hostNames = new Set<string>();
  if (c.agentSockets.sockets.length || c.agentSockets.directories.length) hostNames.add(c.agentSockets.host);
  for (const [i, h] of c.libvirt.hosts.entries()) {
    if (hostNames.has(h.name))
      ctx.addIssue({
        code: 'custom',
        path: ['libvirt', 'hosts', i, 'name'],
        message: `duplicate host name '${h.name}' (agentSockets.host counts too)`,
      });
    hostNames.add(h.name);
  }
  const seen = new Set<string>();
  for (const [i, id] of c.auth.identities.entries()) {
    for (const key of [`name:${id.name}`, `hash:${id.tokenSha256}`]) {
      if (seen.has(key))
        ctx.addIssue({
          code: 'custom',
          path: ['auth', 'identities', i],
          message: `duplicate identity ${key.startsWith('name') ? 'name' : 'token hash'}`,
        });
      seen.add(key);
    }
    // One certificate proving two identities would make the answer depend on the order of the list.
    for (const f of id.clientCertFingerprints) {
      if (seen.has(`cert:${f}`))
        ctx.addIssue({
          code: 'custom',
          path: ['auth', 'identities', i, 'clientCertFingerprints'],
          message: `client certificate ${f} already proves another identity`,
        });
      seen.add(`cert:${f}`);
    }
  }
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
