// Who a request acts as, and what it may touch: scopes, and the domains its patterns grant (domain-patterns.ts).
import { GatewayError } from '../errors.js';
import { compileDomainPatterns, type DomainFacts } from './domain-patterns.js';
import type { PoliciesConfig } from '../config/identities.js';
import { compilePolicies, type Policies } from './policies.js';
import { SCOPES, type Scope } from '../config/scopes.js';
import type { KeystoneFacts } from './keystone/token.js';

export interface Identity {
  name: string;
  scopes: ReadonlySet<Scope>;
  /** One matcher per domain pattern; null: every domain. */
  domains: readonly ((dom: DomainFacts) => boolean)[] | null;
  /** Path, exec and raw-command policies (src/auth/policies.ts); NO_POLICIES: scopes alone decide. */
  policies: Policies;
  /**
   * A project-scoped Keystone token's project: besides `domains`, only domains whose Nova metadata names this
   * project (src/domains/nova-metadata.ts); a domain without Nova metadata names no project.
   */
  novaProject?: string;
  /** Who a Keystone token is (src/auth/keystone/): for audit lines and logs. */
  keystone?: KeystoneFacts;
}

export function makeIdentity(name: string, scopes: readonly Scope[], domains: readonly string[], policies?: PoliciesConfig): Identity {
  return { name, scopes: new Set(scopes), domains: compileDomainPatterns(domains), policies: compilePolicies(policies) };
}

/** Development mode (auth.mode: none): everything, everywhere. */
export const DEVELOPMENT_IDENTITY: Identity = makeIdentity('development', [...SCOPES], ['*']);

/**
 * Whether the identity's patterns grant this domain (domain-patterns.ts has the rule). For an identity with a Nova
 * project, the domain's project must match too: mayTouchProject, with what the domain's metadata says.
 */
export function mayTouch(identity: Identity, dom: DomainFacts): boolean {
  return identity.domains === null || identity.domains.some((matches) => matches(dom));
}

/** The Nova project condition: none, or the domain's Nova project id (null: it has none) is the identity's project. */
export function mayTouchProject(identity: Identity, novaProjectId: string | null | undefined): boolean {
  return identity.novaProject === undefined || (typeof novaProjectId === 'string' && novaProjectId === identity.novaProject);
}

/** The identity of a request on a guarded route; never null there, and refused rather than assumed if it were. */
export function requireIdentity(identity: Identity | null): Identity {
  if (!identity) throw new GatewayError('unauthenticated', 'send Authorization: Bearer <token>');
  return identity;
}
