// auth.keystone: OpenStack Keystone tokens (X-Auth-Token) as identities beside the gateway's own bearer tokens
// (src/auth/keystone/ validates them). Off unless present.
import { z } from 'zod';
import { ms, noControl } from './fields.js';
import { domainPatternSchema } from './identities.js';
import { SCOPES } from './scopes.js';

const name = noControl(255);

export const keystoneConfigSchema = z
  .strictObject({
    /** The identity API v3 endpoint, e.g. https://keystone.example:5000/v3 (what `openstack endpoint list` shows for identity). */
    url: z
      .url({ protocol: /^https?$/ })
      .regex(/\/v3\/?$/, 'must be the identity API v3 endpoint, ending in /v3')
      .transform((u) => u.replace(/\/$/, '')),
    /**
     * The gateway's own Keystone user, which validates the tokens it is sent (GET /v3/auth/tokens). The role `service`
     * on its project is enough under Keystone's default policy; it needs no admin role.
     */
    service: z
      .strictObject({
        username: name,
        /** Its password here, or in passwordFile (a mounted secret; read at start-up, trailing newline dropped). */
        password: z.string().min(1).max(4096).optional(),
        passwordFile: z.string().min(1).optional(),
        userDomainName: name.default('Default'),
        projectName: name,
        projectDomainName: name.default('Default'),
      })
      .refine((s) => (s.password === undefined) !== (s.passwordFile === undefined), 'give exactly one of password and passwordFile')
      .optional(),
    /**
     * Instead of service: a token the gateway validates with as it is, in a file (read at start-up; a mounted secret
     * that something else renews needs a restart to be read again). Keystone's tokens expire (an hour by default): once
     * this one has, every new token is 503 auth_unavailable. service, which the gateway renews itself, is the better choice.
     */
    serviceTokenFile: z.string().min(1).optional(),
    /** CA bundle (PEM) that Keystone's certificate must verify against; absent: the system's. */
    caFile: z.string().min(1).optional(),
    /**
     * How long a validated token is trusted without asking Keystone again: a token revoked in Keystone keeps working
     * here for at most this long. Never past the token's own expires_at.
     */
    cacheTtlMs: z.number().int().min(0).max(3_600_000).default(60_000),
    /** Validations kept at most (the oldest dropped first). */
    cacheMaxEntries: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Per request to Keystone; past it the request answers 503 auth_unavailable. */
    timeoutMs: ms(60_000).default(5_000),
    /** Retry-After (seconds) of a 503 auth_unavailable. */
    retryAfterSeconds: z.number().int().min(1).max(3600).default(5),
    /**
     * Keystone role name to the gateway scopes it grants (the union over the token's roles, implied ones included:
     * a member's token also lists reader). Nothing by default: a role must be mapped to grant anything.
     */
    roles: z.record(name, z.array(z.enum(SCOPES)).min(1)).default({}),
    /**
     * The domains unscoped and domain-scoped tokens may touch (identities' pattern grammar). None by default: such a
     * token names no project, so it reaches no instance unless an operator says so here. A project-scoped token
     * reaches the domains whose Nova metadata names its project; a system-scoped one (system: all) every domain.
     */
    unscopedDomains: z.array(domainPatternSchema).default([]),
  })
  .refine((k) => (k.service === undefined) !== (k.serviceTokenFile === undefined), {
    message: 'give exactly one of service (the gateway logs in itself) and serviceTokenFile',
    path: ['service'],
  })
  .optional();

export type KeystoneConfig = NonNullable<z.infer<typeof keystoneConfigSchema>>;
