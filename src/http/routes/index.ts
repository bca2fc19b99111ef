// Every resource's routes, and the OpenAPI tags that group them. One line each: add a routes file here. The
// routes about one domain (/domains/{domain}...) are declarations given to a domain scope (domain-scope.ts);
// the others are plugins of their own. Each is given the gateway's services (gateway.ts) and creates none.
import type { FastifyPluginAsync } from 'fastify';
import type { Gateway } from '../../gateway.js';
import { domainScope } from '../domain-scope.js';
import { agentRoutes } from './agent.js';
import { agentSyncRoutes } from './agent-sync.js';
import { domainListRoutes, domainRoutes } from './domains.js';
import { accountRoutes } from './accounts.js';
import { addressRoutes } from './addresses.js';
import { eventRoutes } from './events.js';
import { execRoutes } from './exec.js';
import { fileRoutes } from './files.js';
import { freezeRoutes } from './freeze.js';
import { guestFactRoutes } from './guest-facts.js';
import { guestMemoryBlockRoutes } from './guest-memory-blocks.js';
import { guestStorageRoutes } from './guest-storage.js';
import { guestTimeRoutes } from './guest-time.js';
import { guestVcpuRoutes } from './guest-vcpus.js';
import { healthRoutes } from './health.js';
import { hostRoutes } from './hosts.js';
import { metricsRoutes } from './metrics.js';
import { networkInterfaceRoutes } from './network-interfaces.js';
import { powerRoutes } from './power.js';
import { rawCommandRoutes } from './raw-command.js';

/** In the order the OpenAPI document lists them. */
export const ROUTE_MODULES: ((services: Gateway) => FastifyPluginAsync)[] = [
  healthRoutes,
  hostRoutes,
  domainListRoutes,
  domainScope(domainRoutes, agentRoutes, agentSyncRoutes, networkInterfaceRoutes),
  // Between two domain scopes only to keep its place in the document, beside the network interfaces.
  addressRoutes,
  domainScope(
    guestFactRoutes,
    guestStorageRoutes,
    guestTimeRoutes,
    guestVcpuRoutes,
    guestMemoryBlockRoutes,
    fileRoutes,
    execRoutes,
    accountRoutes,
    rawCommandRoutes,
    powerRoutes,
    freezeRoutes,
  ),
  eventRoutes,
  metricsRoutes,
];

export const ROUTE_TAGS: { name: string; description: string }[] = [
  { name: 'hosts', description: 'The libvirt hosts the gateway serves' },
  { name: 'domains', description: 'Domains known to libvirt, on every host' },
  { name: 'agent', description: 'The guest agent itself' },
  { name: 'network', description: "The guest's network" },
  { name: 'guest', description: 'Facts about the guest: OS, host name, time zone, users, filesystems, disks, statistics' },
  { name: 'guest-settings', description: "The guest's clock, vCPUs and memory blocks" },
  { name: 'files', description: 'Guest files, streamed in and out' },
  { name: 'exec', description: 'Programs run in the guest' },
  { name: 'accounts', description: "Guest users' passwords and SSH authorized keys" },
  { name: 'power', description: 'Shutdown, halt, reboot and suspend from inside the guest' },
  { name: 'fsfreeze', description: 'File-system freeze, thaw and trim' },
  { name: 'events', description: 'What happens to domains, their agents and the hosts, as Server-Sent Events' },
  { name: 'health', description: 'Liveness and readiness' },
  { name: 'metrics', description: 'Prometheus metrics' },
];
