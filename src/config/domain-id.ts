// What may name a domain: the {domain} of a URL (a name or UUID, optionally host:name) and an agent socket's
// domain name in the configuration. One rule, checked by the routes' schema, by the domain authorisation before
// anything is looked up (domain-scope.ts), and by the config.
import { z } from 'zod';

/** Longer ids are refused before any lookup: libvirt's own names are far shorter. */
export const DOMAIN_ID_MAX_LENGTH = 1024;

/** libvirt refuses none of these in lookups, but no real domain name holds them ("/" would also split a URL). */
export const DOMAIN_ID_PATTERN = /^[^\u0000-\u001f\u007f/]+$/;

/** Whether `id` could name a domain at all: anything else is refused without asking any host. */
export function isDomainId(id: string): boolean {
  return id.length <= DOMAIN_ID_MAX_LENGTH && DOMAIN_ID_PATTERN.test(id);
}

/** The rule as a zod string (the OpenAPI document shows its limits). */
export function domainIdString() {
  return z.string().min(1).max(DOMAIN_ID_MAX_LENGTH).regex(DOMAIN_ID_PATTERN, 'must not contain control characters or slashes');
}
