// Who a request acts as, and what it may touch: scopes, and the domains its patterns grant (domain-patterns.ts).
import { GatewayError } from '../errors.js';
import { compileDomainPatterns, type DomainFacts } from './domain-patterns.js';
import type { PoliciesConfig } from '../config/identities.js';
import { compilePolicies, type Policies } from './policies.js';
import { SCOPES, type Scope } from '../config/scopes.js';

export interface Identity {
  name: string;
  scopes: ReadonlySet<Scope>;
  /** One matcher per domain pattern; null: every domain. */
  domains: readonly ((dom: DomainFacts) => boolean)[] | null;
  /** Path, exec and raw-command policies (src/auth/policies.ts); NO_POLICIES: scopes alone decide. */
  policies: Policies;
}

export function makeIdentity(name: string, scopes: readonly Scope[], domains: readonly string[], policies?: PoliciesConfig): Identity {
  return { name, scopes: new Set(scopes), domains: compileDomainPatterns(domains), policies: compilePolicies(policies) };
}

/** Development mode (auth.mode: none): everything, everywhere. */
export const DEVELOPMENT_IDENTITY: Identity = makeIdentity('development', [...SCOPES], ['*']);

/** Whether the identity may touch this domain (domain-patterns.ts has the rule). */
export function mayTouch(identity: Identity, dom: DomainFacts): boolean {
  return identity.domains === null || identity.domains.some((matches) => matches(dom));
}

/** The identity of a request on a guarded route; never null there, and refused rather than assumed if it were. */
export function requireIdentity(identity: Identity | null): Identity {
  if (!identity) throw new GatewayError('unauthenticated', 'send Authorization: Bearer <token>');
  return identity;
}
