// Who a request acts as, and what it may touch: scopes, and glob patterns of domain names or UUIDs.
import { globToRegExp } from '../glob.js';
import { compilePolicies, type Policies, type PoliciesConfig } from './policies.js';
import { SCOPES, type Scope } from './scopes.js';

export interface Identity {
  name: string;
  scopes: ReadonlySet<Scope>;
  /** Patterns of domain names or UUIDs ('*' and '?' wildcards); null: every domain. */
  domains: readonly RegExp[] | null;
  /** Path, exec and raw-command policies (src/auth/policies.ts); NO_POLICIES: scopes alone decide. */
  policies: Policies;
}

export function makeIdentity(name: string, scopes: readonly Scope[], domains: readonly string[], policies?: PoliciesConfig): Identity {
  return { name, scopes: new Set(scopes), domains: domains.includes('*') ? null : domains.map((d) => globToRegExp(d, 'i')), policies: compilePolicies(policies) };
}

/** Development mode (auth.mode: none): everything, everywhere. */
export const DEVELOPMENT_IDENTITY: Identity = makeIdentity('development', [...SCOPES], ['*']);

/** Whether the identity may touch this domain: a pattern matches its name, its UUID (any case) or host:name. */
export function mayTouch(identity: Identity, dom: { name: string; uuid: string; host?: string | null }): boolean {
  if (!identity.domains) return true;
  const qualified = dom.host ? `${dom.host}:${dom.name}` : null;
  return identity.domains.some((re) => re.test(dom.name) || re.test(dom.uuid) || (qualified !== null && re.test(qualified)));
}
