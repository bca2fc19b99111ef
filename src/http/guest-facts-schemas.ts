// Response schemas of the guest-facts routes (OS, host name, time zone, users, CPU statistics, load, routes).
import { z } from 'zod';
import { exactInt64, exactUint64 } from './exact-integer.js';
import { domainRefSchema, EXAMPLE_DOMAIN } from './schemas.js';

const str = () => z.string().nullable();

export const osSchema = z
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

export const hostnameSchema = z
  .object({ domain: domainRefSchema, hostname: z.string() })
  .meta({ id: 'GuestHostname', example: { domain: EXAMPLE_DOMAIN, hostname: 'guest1' } });

export const timezoneSchema = z
  .object({
    domain: domainRefSchema,
    zone: str().describe('Time zone name as the guest reports it; informational only'),
    offsetSeconds: z.number().int().describe('Offset to UTC in seconds, negative west of Greenwich'),
  })
  .meta({ id: 'GuestTimezone', example: { domain: EXAMPLE_DOMAIN, zone: 'UTC', offsetSeconds: 0 } });

export const usersSchema = z
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
  .meta({
    id: 'GuestUsers',
    example: {
      domain: EXAMPLE_DOMAIN,
      users: [{ user: 'root', logonDomain: null, loginTime: '2026-11-28T00:01:02.500Z', loginTimeSeconds: 1795824062.5 }],
    },
  });

const ms = () => exactUint64().nullable();
export const cpuStatsSchema = z
  .object({
    domain: domainRefSchema,
    cpus: z.array(
      z.object({
        cpu: z.number().int().nullable().describe('CPU index in the guest'),
        type: z
          .string()
          .describe(
            "Kind of statistics; 'linux' is the only one so far. The *Ms counters: exact uint64 JSON integers, null when the guest kernel lacks one",
          ),
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
      cpus: [
        {
          cpu: 0,
          type: 'linux',
          userMs: 420,
          niceMs: 0,
          systemMs: 4620,
          idleMs: 341530,
          iowaitMs: 0,
          irqMs: 0,
          softirqMs: 70,
          stealMs: 0,
          guestMs: 0,
          guestNiceMs: 0,
        },
      ],
    },
  });

export const loadSchema = z
  .object({ domain: domainRefSchema, load1: z.number(), load5: z.number(), load15: z.number() })
  .meta({ id: 'GuestLoad', example: { domain: EXAMPLE_DOMAIN, load1: 0.12, load5: 0.08, load15: 0.02 } });

/** A route member as the kernel holds it, an unsigned 32-bit value (reply-integers.ts kernelU32 undoes qemu-ga's sign extension). */
const u32 = (description?: string) =>
  exactInt64(description ? `${description}; the kernel's unsigned 32-bit value` : "The kernel's unsigned 32-bit value");
export const routesSchema = z
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
        metric: u32('Route metric (IPv6 routes the kernel gives metric 0xffffffff: 4294967295, which qemu-ga sends as -1)'),
        flags: u32(
          'RTF_* flags (IPv6 routes with the top bit set, such as 0x80200001 = 2149580801, ' +
            'reach the gateway sign-extended to 64 bits from qemu-ga 9.1-10.x: 18446744071564165121; ' +
            'answered as the kernel has them)',
        ).nullable(),
        refCount: u32().nullable(),
        use: u32().nullable(),
        window: u32('IPv4').nullable(),
        mtu: u32('IPv4').nullable(),
        initialRtt: u32('IPv4 initial round-trip time, as the kernel reports it').nullable(),
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
