// What an identity may be granted. Each route declares the one it needs (src/http/permissions.ts).
export const SCOPES = ['read', 'files:read', 'files:write', 'exec', 'power', 'freeze', 'accounts', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];
