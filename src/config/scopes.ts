// What an identity may be granted. Each route declares the one it needs (src/http/permissions.ts).
// 'metrics': GET /metrics only (a Prometheus scraper's token); 'admin' does not include it.
export const SCOPES = ['read', 'files:read', 'files:write', 'exec', 'power', 'freeze', 'accounts', 'admin', 'metrics'] as const;
export type Scope = (typeof SCOPES)[number];
