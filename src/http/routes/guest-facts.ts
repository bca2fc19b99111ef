// Read-only facts about the guest: OS, host name, time zone, users, CPU statistics, load and routes.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ExactInteger } from '../../agent/core/agent-json.js';
import { CPU_STAT_KEYS, guestGetCpustats, guestGetHostName, guestGetLoad, guestGetOsinfo, guestGetTimezone, guestGetUsers, guestNetworkGetRoute } from '../../agent/commands/index.js';
import { kernelU32 } from '../../agent/core/reply-integers.js';
import type { Gateway } from '../../gateway.js';
import { agentRouteSchema, agentTarget } from '../agent-route.js';
import { cpuStatsSchema, hostnameSchema, loadSchema, osSchema, routesSchema, timezoneSchema, usersSchema } from '../guest-facts-schemas.js';
import { domainRef as ref, guestRouteErrors } from './guest-route-common.js';

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
            ...(Object.fromEntries(CPU_STAT_KEYS.map((k) => [camelCpuKey(k), c[k] ?? null])) as Record<ReturnType<typeof camelCpuKey>, ExactInteger | null>),
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
        return { domain: ref(dom), load1: r.load1m, load5: r.load5m, load15: r.load15m };
      },
    );

    app.get(
      '/domains/:domain/routes',
      {
        config: { permission: 'read' },
        schema: {
          tags: ['network'],
          summary: "The guest's routing table",
          description:
            'Agent command: guest-network-get-route (qemu-ga 9.1+; older agents answer 501 command_not_supported). The numbers are the kernel\'s (unsigned 32-bit): the negative and sign-extended values qemu-ga sends for some IPv6 routes are turned back into them.',
          ...agentRouteSchema(gateway),
          response: { 200: routesSchema, ...guestRouteErrors() },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        const r = await gateway.agent.execute(dom, guestNetworkGetRoute, undefined, opts);
        const u32 = (v: ExactInteger | undefined) => (v === undefined ? null : kernelU32(v));
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
            metric: kernelU32(x.metric),
            flags: u32(x.flags),
            refCount: u32(x.refcnt),
            use: u32(x.use),
            window: u32(x.window),
            mtu: u32(x.mtu),
            initialRtt: u32(x.irtt),
          })),
        };
      },
    );
  };
}
