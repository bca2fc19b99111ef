// Read-only facts about the guest: OS, host name, time zone, users, CPU statistics, load and routes.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CPU_STAT_KEYS, guestGetCpustats, guestGetHostName, guestGetLoad, guestGetOsinfo, guestGetTimezone, guestGetUsers, guestNetworkGetRoute } from '../../agent/guest-facts-commands.js';
import type { Gateway } from '../../gateway.js';
import { agentRouteSchema, agentTarget } from '../agent-route.js';
import { domainRefSchema } from '../schemas.js';
import { domainRef as ref, EXAMPLE_DOMAIN, guestRouteErrors } from './guest-route-common.js';

const str = () => z.string().nullable();

const osSchema = z
  .object({
    domain: domainRefSchema,
    os: z.object({
      id: str().describe('os-release ID'),
      name: str(),
      prettyName: str(),
      version: str(),
      versionId: str(),
      variant: str(),
      variantId: str(),
      kernelRelease: str().describe('uname -r'),
      kernelVersion: str().describe('uname -v'),
      machine: str().describe('uname -m'),
    }),
  })
  .meta({
    id: 'GuestOs',
    example: {
      domain: EXAMPLE_DOMAIN,
      os: {
        id: 'qga-test',
        name: 'qga-gateway test guest',
        prettyName: 'qga-gateway test guest',
        version: '1 (busybox)',
        versionId: '1',
        variant: null,
        variantId: null,
        kernelRelease: '6.1.0-56-amd64',
        kernelVersion: '#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2',
        machine: 'x86_64',
      },
    },
  });

const hostnameSchema = z.object({ domain: domainRefSchema, hostname: z.string() }).meta({ id: 'GuestHostname', example: { domain: EXAMPLE_DOMAIN, hostname: 'guest1' } });

const timezoneSchema = z
  .object({
    domain: domainRefSchema,
    zone: str().describe('Time zone name as the guest reports it; informational only'),
    offsetSeconds: z.number().int().describe('Offset to UTC in seconds, negative west of Greenwich'),
  })
  .meta({ id: 'GuestTimezone', example: { domain: EXAMPLE_DOMAIN, zone: 'UTC', offsetSeconds: 0 } });

const usersSchema = z
  .object({
    domain: domainRefSchema,
    users: z.array(
      z.object({
        user: z.string(),
        logonDomain: str().describe('Windows logon domain; null elsewhere'),
        loginTime: z.string().describe('Earliest login of this user, ISO 8601'),
        loginTimeSeconds: z.number().describe('The same, in fractional seconds since the epoch'),
      }),
    ),
  })
  .meta({ id: 'GuestUsers', example: { domain: EXAMPLE_DOMAIN, users: [{ user: 'root', logonDomain: null, loginTime: '2026-11-28T00:01:02.500Z', loginTimeSeconds: 1795824062.5 }] } });

const ms = () => z.number().nullable();
const cpuStatsSchema = z
  .object({
    domain: domainRefSchema,
    cpus: z.array(
      z.object({
        cpu: z.number().int().nullable().describe('CPU index in the guest'),
        type: z.string().describe("Kind of statistics; 'linux' is the only one so far"),
        userMs: ms(),
        niceMs: ms(),
        systemMs: ms(),
        idleMs: ms(),
        iowaitMs: ms(),
        irqMs: ms(),
        softirqMs: ms(),
        stealMs: ms(),
        guestMs: ms(),
        guestNiceMs: ms(),
      }),
    ),
  })
  .meta({
    id: 'GuestCpuStats',
    example: {
      domain: EXAMPLE_DOMAIN,
      cpus: [{ cpu: 0, type: 'linux', userMs: 420, niceMs: 0, systemMs: 4620, idleMs: 341530, iowaitMs: 0, irqMs: 0, softirqMs: 70, stealMs: 0, guestMs: 0, guestNiceMs: 0 }],
    },
  });

const loadSchema = z
  .object({ domain: domainRefSchema, load1: z.number(), load5: z.number(), load15: z.number() })
  .meta({ id: 'GuestLoad', example: { domain: EXAMPLE_DOMAIN, load1: 0.12, load5: 0.08, load15: 0.02 } });

const int = () => z.number().int().nullable();
const routesSchema = z
  .object({
    domain: domainRefSchema,
    routes: z.array(
      z.object({
        interface: z.string(),
        ipVersion: z.number().int().describe('4 or 6'),
        destination: z.string(),
        destinationPrefixLength: str().describe('IPv6; as the agent reports it'),
        gateway: str(),
        mask: str().describe('IPv4'),
        nextHop: str().describe('IPv6'),
        source: str().describe('IPv6'),
        sourcePrefixLength: str().describe('IPv6; as the agent reports it'),
        metric: z.number().int(),
        flags: z.number().nullable(),
        refCount: int(),
        use: int(),
        window: int(),
        mtu: int(),
        initialRtt: int().describe('IPv4 initial round-trip time, as the kernel reports it'),
      }),
    ),
  })
  .meta({
    id: 'GuestRoutes',
    example: {
      domain: EXAMPLE_DOMAIN,
      routes: [
        {
          interface: 'eth0',
          ipVersion: 4,
          destination: '0.0.0.0',
          destinationPrefixLength: null,
          gateway: '10.0.2.2',
          mask: '0.0.0.0',
          nextHop: null,
          source: null,
          sourcePrefixLength: null,
          metric: 0,
          flags: 3,
          refCount: 0,
          use: 0,
          window: 0,
          mtu: 0,
          initialRtt: 0,
        },
      ],
    },
  });

const camelCpuKey = (k: (typeof CPU_STAT_KEYS)[number]) => `${k === 'guestnice' ? 'guestNice' : k}Ms` as const;

export function guestFactRoutes(gateway: Gateway): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/domains/:domain/os',
      {
        config: { permission: 'read' },
        schema: {
          tags: ['guest'],
          summary: "The guest's operating system and kernel",
          description: 'Agent command: guest-get-osinfo. os-release fields and uname; null when the guest does not report one.',
          ...agentRouteSchema(gateway),
          response: { 200: osSchema, ...guestRouteErrors() },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        const r = await gateway.agent.execute(dom, guestGetOsinfo, undefined, opts);
        return {
          domain: ref(dom),
          os: {
            id: r.id ?? null,
            name: r.name ?? null,
            prettyName: r['pretty-name'] ?? null,
            version: r.version ?? null,
            versionId: r['version-id'] ?? null,
            variant: r.variant ?? null,
            variantId: r['variant-id'] ?? null,
            kernelRelease: r['kernel-release'] ?? null,
            kernelVersion: r['kernel-version'] ?? null,
            machine: r.machine ?? null,
          },
        };
      },
    );

    app.get(
      '/domains/:domain/hostname',
      {
        config: { permission: 'read' },
        schema: {
          tags: ['guest'],
          summary: "The guest's host name",
          description: 'Agent command: guest-get-host-name.',
          ...agentRouteSchema(gateway),
          response: { 200: hostnameSchema, ...guestRouteErrors() },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        const r = await gateway.agent.execute(dom, guestGetHostName, undefined, opts);
        return { domain: ref(dom), hostname: r['host-name'] };
      },
    );

    app.get(
      '/domains/:domain/timezone',
      {
        config: { permission: 'read' },
        schema: {
          tags: ['guest'],
          summary: "The guest's time zone",
          description: 'Agent command: guest-get-timezone.',
          ...agentRouteSchema(gateway),
          response: { 200: timezoneSchema, ...guestRouteErrors() },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        const r = await gateway.agent.execute(dom, guestGetTimezone, undefined, opts);
        return { domain: ref(dom), zone: r.zone ?? null, offsetSeconds: r.offset };
      },
    );

    app.get(
      '/domains/:domain/users',
      {
        config: { permission: 'read' },
        schema: {
          tags: ['guest'],
          summary: 'Users logged in to the guest',
          description: 'Agent command: guest-get-users. One entry per user, with the earliest login.',
          ...agentRouteSchema(gateway),
          response: { 200: usersSchema, ...guestRouteErrors() },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        const r = await gateway.agent.execute(dom, guestGetUsers, undefined, opts);
        return {
          domain: ref(dom),
          users: r.map((u) => ({
            user: u.user,
            logonDomain: u.domain ?? null,
            loginTime: new Date(Math.round(u['login-time'] * 1000)).toISOString(),
            loginTimeSeconds: u['login-time'],
          })),
        };
      },
    );

    app.get(
      '/domains/:domain/cpu-stats',
      {
        config: { permission: 'read' },
        schema: {
          tags: ['guest'],
          summary: 'Time each guest CPU spent per state, in milliseconds',
          description: 'Agent command: guest-get-cpustats (qemu-ga 7.1+, Linux guests). Counters since the guest booted.',
          ...agentRouteSchema(gateway),
          response: { 200: cpuStatsSchema, ...guestRouteErrors() },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        const r = await gateway.agent.execute(dom, guestGetCpustats, undefined, opts);
        return {
          domain: ref(dom),
          cpus: r.map((c) => ({
            cpu: c.cpu ?? null,
            type: c.type,
            ...(Object.fromEntries(CPU_STAT_KEYS.map((k) => [camelCpuKey(k), c[k] ?? null])) as Record<ReturnType<typeof camelCpuKey>, number | null>),
          })),
        };
      },
    );

    app.get(
      '/domains/:domain/load',
      {
        config: { permission: 'read' },
        schema: {
          tags: ['guest'],
          summary: "The guest's load averages over 1, 5 and 15 minutes",
          description: 'Agent command: guest-get-load (qemu-ga 10.0+; older agents answer 501 command_not_supported).',
          ...agentRouteSchema(gateway),
          response: { 200: loadSchema, ...guestRouteErrors() },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        const r = await gateway.agent.execute(dom, guestGetLoad, undefined, opts);
        return { domain: ref(dom), load1: r.load1, load5: r.load5, load15: r.load15 };
      },
    );

    app.get(
      '/domains/:domain/routes',
      {
        config: { permission: 'read' },
        schema: {
          tags: ['network'],
          summary: "The guest's routing table",
          description: 'Agent command: guest-network-get-route (qemu-ga 9.1+; older agents answer 501 command_not_supported).',
          ...agentRouteSchema(gateway),
          response: { 200: routesSchema, ...guestRouteErrors() },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        const r = await gateway.agent.execute(dom, guestNetworkGetRoute, undefined, opts);
        return {
          domain: ref(dom),
          routes: r.map((x) => ({
            interface: x.iface,
            ipVersion: x.version,
            destination: x.destination,
            destinationPrefixLength: x.desprefixlen ?? null,
            gateway: x.gateway ?? null,
            mask: x.mask ?? null,
            nextHop: x.nexthop ?? null,
            source: x.source ?? null,
            sourcePrefixLength: x.srcprefixlen ?? null,
            metric: x.metric,
            flags: x.flags ?? null,
            refCount: x.refcnt ?? null,
            use: x.use ?? null,
            window: x.window ?? null,
            mtu: x.mtu ?? null,
            initialRtt: x.irtt ?? null,
          })),
        };
      },
    );
  };
}
