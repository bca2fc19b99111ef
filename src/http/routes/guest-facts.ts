// Read-only facts about the guest: OS, host name, time zone, users, CPU statistics, load and routes.
import type { ExactInteger } from '../../agent/transports/agent-json.js';
import {
  CPU_STAT_KEYS,
  guestGetCpustats,
  guestGetHostName,
  guestGetLoad,
  guestGetOsinfo,
  guestGetTimezone,
  guestGetUsers,
} from '../../agent/commands/system.js';
import { guestNetworkGetRoute } from '../../agent/commands/network.js';
import { kernelU32 } from '../../agent/commands/reply-integers.js';
import type { Gateway } from '../../gateway.js';
import { agentQuery } from '../agent-query.js';
import type { DomainRoute } from '../domain-scope.js';
import { cpuStatsSchema, hostnameSchema, loadSchema, osSchema, routesSchema, timezoneSchema, usersSchema } from '../guest-facts-schemas.js';

const camelCpuKey = (k: (typeof CPU_STAT_KEYS)[number]) => `${k === 'guestnice' ? 'guestNice' : k}Ms` as const;

export function guestFactRoutes({ agent }: Gateway): DomainRoute[] {
  return [
    agentQuery(agent, {
      operationId: 'getOsInfo',
      path: '/os',
      permission: 'read',
      tags: ['guest'],
      summary: "The guest's operating system and kernel",
      command: guestGetOsinfo,
      details: 'os-release fields and uname; null when the guest does not report one.',
      response: osSchema,
      problems: [501],
      reshape: (r) => ({
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
      }),
    }),

    agentQuery(agent, {
      operationId: 'getHostname',
      path: '/hostname',
      permission: 'read',
      tags: ['guest'],
      summary: "The guest's host name",
      command: guestGetHostName,
      response: hostnameSchema,
      problems: [501],
      reshape: (r) => ({ hostname: r['host-name'] }),
    }),

    agentQuery(agent, {
      operationId: 'getTimezone',
      path: '/timezone',
      permission: 'read',
      tags: ['guest'],
      summary: "The guest's time zone",
      command: guestGetTimezone,
      response: timezoneSchema,
      problems: [501],
      reshape: (r) => ({ zone: r.zone ?? null, offsetSeconds: r.offset }),
    }),

    agentQuery(agent, {
      operationId: 'getLoggedInUsers',
      path: '/users',
      permission: 'read',
      tags: ['guest'],
      summary: 'Users logged in to the guest',
      command: guestGetUsers,
      details: 'One entry per user, with the earliest login.',
      response: usersSchema,
      problems: [501],
      reshape: (r) => ({
        users: r.map((u) => ({
          user: u.user,
          logonDomain: u.domain ?? null,
          loginTime: new Date(Math.round(u['login-time'] * 1000)).toISOString(),
          loginTimeSeconds: u['login-time'],
        })),
      }),
    }),

    agentQuery(agent, {
      operationId: 'getCpuStats',
      path: '/cpu-stats',
      permission: 'read',
      tags: ['guest'],
      summary: 'Time each guest CPU spent per state, in milliseconds',
      command: guestGetCpustats,
      requires: 'qemu-ga 7.1+, Linux guests',
      details: 'Counters since the guest booted.',
      response: cpuStatsSchema,
      problems: [501],
      reshape: (r) => ({
        cpus: r.map((c) => ({
          cpu: c.cpu ?? null,
          type: c.type,
          ...(Object.fromEntries(CPU_STAT_KEYS.map((k) => [camelCpuKey(k), c[k] ?? null])) as Record<
            ReturnType<typeof camelCpuKey>,
            ExactInteger | null
          >),
        })),
      }),
    }),

    agentQuery(agent, {
      operationId: 'getLoad',
      path: '/load',
      permission: 'read',
      tags: ['guest'],
      summary: "The guest's load averages over 1, 5 and 15 minutes",
      command: guestGetLoad,
      requires: 'qemu-ga 10.0+; older agents answer 501 command_not_supported',
      response: loadSchema,
      problems: [501],
      reshape: (r) => ({ load1: r.load1m, load5: r.load5m, load15: r.load15m }),
    }),

    agentQuery(agent, {
      operationId: 'getRoutes',
      path: '/routes',
      permission: 'read',
      tags: ['network'],
      summary: "The guest's routing table",
      command: guestNetworkGetRoute,
      requires: 'qemu-ga 9.1+; older agents answer 501 command_not_supported',
      details:
        "The numbers are the kernel's (unsigned 32-bit): the negative and sign-extended values qemu-ga sends for some IPv6 routes are turned back into them.",
      response: routesSchema,
      problems: [501],
      reshape: (r) => {
        const u32 = (v: ExactInteger | undefined) => (v === undefined ? null : kernelU32(v));
        return {
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
    }),
  ];
}
