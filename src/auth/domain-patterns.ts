// Which domains an identity's `domains` patterns grant. One rule, so that nothing matches by accident:
//   - 'uuid:PATTERN' grants by UUID: PATTERN is matched, in any case, against the canonical UUID (lower case,
//     dashed); it may hold '*' and '?', and a full UUID may be written without dashes.
//   - a full UUID (any case, with or without dashes) grants that UUID and nothing else;
//   - 'HOST:PATTERN' grants on one host (or hosts, HOST being a glob): PATTERN is a full UUID, or a name glob;
//   - anything else is a name glob, matched case-sensitively against the name alone (libvirt names are
//     case-sensitive: 'a1' never grants 'A1'), never against the UUID or the host.
// '*' alone grants everything. The config refuses a pattern that breaks these rules (src/config/identities.ts).
import { globMatches } from '../glob.js';

export interface DomainFacts {
  name: string;
  /** Empty when not known (a candidate of an ambiguous name): then no UUID grant matches. */
  uuid: string;
  host?: string | null;
}

type Matcher = (dom: DomainFacts) => boolean;

const FULL_UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** The canonical form libvirt answers with: lower case, dashed. */
export function canonicalUuid(uuid: string): string {
  const hex = uuid.replace(/-/g, '').toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function uuidMatcher(pattern: string): Matcher {
  if (FULL_UUID.test(pattern)) {
    const want = canonicalUuid(pattern);
    return (d) => d.uuid !== '' && canonicalUuid(d.uuid) === want;
  }
  const glob = pattern.toLowerCase();
  return (d) => d.uuid !== '' && globMatches(glob, canonicalUuid(d.uuid));
}

function nameMatcher(pattern: string): Matcher {
  return (d) => globMatches(pattern, d.name);
}

export function compileDomainPattern(pattern: string): Matcher {
  if (pattern.startsWith('uuid:')) return uuidMatcher(pattern.slice(5));
  if (FULL_UUID.test(pattern)) return uuidMatcher(pattern);
  const colon = pattern.indexOf(':');
  if (colon >= 0) {
    const hostGlob = pattern.slice(0, colon);
    const rest = pattern.slice(colon + 1);
    const inner = FULL_UUID.test(rest) ? uuidMatcher(rest) : nameMatcher(rest);
    return (d) => typeof d.host === 'string' && globMatches(hostGlob, d.host) && inner(d);
  }
  return nameMatcher(pattern);
}

/** null: every domain ('*' among the patterns). */
export function compileDomainPatterns(patterns: readonly string[]): Matcher[] | null {
  return patterns.includes('*') ? null : patterns.map(compileDomainPattern);
}
