// What Keystone answers to a token validation (GET /v3/auth/tokens, identity API v3), as far as the gateway reads it:
// the shapes recorded from Keystone Zed in test/fixtures/keystone/ (validate-*.json). A project-scoped token names
// its project, a domain-scoped one its domain, a system-scoped one `system: {all: true}`, an unscoped one none of them
// (and no roles). Members the gateway does not read (catalog, audit_ids, methods...) are let through unread.
import { z } from 'zod';

const idName = z.looseObject({ id: z.string().min(1).max(255), name: z.string().min(1).max(255) });

/** Keystone writes `2026-12-07T16:32:51.000000Z`: microseconds, which Date.parse reads. */
const keystoneTime = z
  .string()
  .max(64)
  .refine((t) => Number.isFinite(Date.parse(t)), 'not a time Keystone writes');

export const validatedTokenSchema = z.looseObject({
  token: z.looseObject({
    user: idName.extend({ domain: idName }),
    expires_at: keystoneTime,
    issued_at: keystoneTime.optional(),
    project: idName.extend({ domain: idName }).optional(),
    domain: idName.optional(),
    system: z.looseObject({ all: z.boolean().optional() }).optional(),
    roles: z.array(idName).max(1024).optional(),
  }),
});

export type ValidatedToken = z.infer<typeof validatedTokenSchema>['token'];

/** Who a token is, as audit lines and logs name a Keystone identity (never the token itself). */
export interface KeystoneFacts {
  userId: string;
  userName: string;
  userDomain: string;
  /** project-scoped tokens; domain-scoped: the Keystone domain; system-scoped: system all; else unscoped. */
  scope: 'project' | 'domain' | 'system' | 'unscoped';
  projectId?: string;
  projectName?: string;
  domainId?: string;
  roles: string[];
  expiresAt: string;
}

export function keystoneFacts(token: ValidatedToken): KeystoneFacts {
  const scope = token.project ? 'project' : token.system?.all === true ? 'system' : token.domain ? 'domain' : 'unscoped';
  return {
    userId: token.user.id,
    userName: token.user.name,
    userDomain: token.user.domain.name,
    scope,
    ...(token.project ? { projectId: token.project.id, projectName: token.project.name } : {}),
    ...(token.domain ? { domainId: token.domain.id } : {}),
    roles: (token.roles ?? []).map((r) => r.name),
    expiresAt: new Date(Date.parse(token.expires_at)).toISOString(),
  };
}
