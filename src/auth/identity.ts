// Who a request acts as, and what it may touch: scopes, and glob patterns of domain names or UUIDs.
import { compilePolicies, type Policies, type PoliciesConfig } from './policies.js';
import type { Scope } from './scopes.js';

export interface Identity {
  name: string;
  scopes: ReadonlySet<Scope>;
  /** Patterns of domain names or UUIDs ('*' and '?' wildcards); null: every domain. */
  domains: readonly RegExp[] | null;
  /** Path, exec and raw-command policies (src/auth/policies.ts); NO_POLICIES: scopes alone decide. */
  policies: Policies;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

export function makeIdentity(name: string, scopes: readonly Scope[], domains: readonly string[], policies?: PoliciesConfig): Identity {
  return { name, scopes: new Set(scopes), domains: domains.includes('*') ? null : domains.map(globToRegExp), policies: compilePolicies(policies) };
}

/** Development mode (auth.mode: none): everything, everywhere. */
export const DEVELOPMENT_IDENTITY: Identity = makeIdentity('development', ['read', 'files:read', 'files:write', 'exec', 'power', 'freeze', 'accounts', 'admin'], ['*']);

/** Whether the identity may touch this domain; a UUID matches in any case. */
export function mayTouch(identity: Identity, dom: { name: string; uuid: string }): boolean {
  if (!identity.domains) return true;
  return identity.domains.some((re) => re.test(dom.name) || re.test(dom.uuid));
}
