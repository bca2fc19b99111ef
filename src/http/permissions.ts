// The permission each route needs. Every route declares one in its config; 'public' routes (health, docs)
// need no token unless auth.protectPublic says so.
import { SCOPES } from '../config/scopes.js';

export const PERMISSIONS = ['public', ...SCOPES] as const;
export type Permission = (typeof PERMISSIONS)[number];

declare module 'fastify' {
  interface FastifyContextConfig {
    permission?: Permission;
  }
}
