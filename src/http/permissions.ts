// The permission each route needs. Every route declares one in its config, so that authentication and
// authorisation can be added in one place later; 'public' routes (health, docs) stay open.
export const PERMISSIONS = ['public', 'read', 'files:read', 'files:write', 'exec', 'power', 'freeze', 'accounts', 'admin'] as const;
export type Permission = (typeof PERMISSIONS)[number];

declare module 'fastify' {
  interface FastifyContextConfig {
    permission?: Permission;
  }
}
