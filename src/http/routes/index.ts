// Every resource's routes, and the OpenAPI tags that group them. One line each: add a routes file here.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Gateway } from '../../gateway.js';
import { agentRoutes } from './agent.js';
import { domainRoutes } from './domains.js';
import { healthRoutes } from './health.js';
import { networkInterfaceRoutes } from './network-interfaces.js';

export const ROUTE_MODULES: ((gateway: Gateway) => FastifyPluginAsyncZod)[] = [
  healthRoutes,
  domainRoutes,
  agentRoutes,
  networkInterfaceRoutes,
];

export const ROUTE_TAGS: { name: string; description: string }[] = [
  { name: 'domains', description: 'Domains known to libvirt' },
  { name: 'agent', description: 'The guest agent itself' },
  { name: 'network', description: "The guest's network" },
  { name: 'health', description: 'Liveness and readiness' },
];
