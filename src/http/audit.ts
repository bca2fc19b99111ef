// The audit trail: one structured line for every state-changing call and every refusal (401/403), to its own
// destination, apart from the request log. It names who, which domain, what action and on what (guest path,
// program, user, command), and the outcome; never a body's content (passwords, file data, tokens). Every field
// is bounded, so that a line has a bounded size whatever the request: the fields come from the URL and the body.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import pino, { type Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { withoutTokens } from './query-secrets.js';
import type { RefusalsLimited } from './refusal-limit.js';
import type { RequestDone } from './request-context.js';

const READ_ONLY_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Longest string kept in an audit field, and most items kept of a list; the cut says how much there was. */
export const MAX_AUDIT_STRING = 512;
export const MAX_AUDIT_ITEMS = 32;

function boundedString(raw: string): string {
  // A token pasted into a URL must not be kept in the audit either.
  const text = withoutTokens(raw);
  return text.length > MAX_AUDIT_STRING ? `${text.slice(0, MAX_AUDIT_STRING)}…(${text.length} chars)` : text;
}

/** A copy of `value` with every string cut to MAX_AUDIT_STRING and every list to MAX_AUDIT_ITEMS (plus a marker). */
export function bounded(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return boundedString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= 3) return '…(nested)';
  if (Array.isArray(value)) {
    const kept = value.slice(0, MAX_AUDIT_ITEMS).map((v) => bounded(v, depth + 1));
    return value.length > MAX_AUDIT_ITEMS ? [...kept, `…(+${value.length - MAX_AUDIT_ITEMS} more)`] : kept;
  }
  const entries = Object.entries(value);
  const kept = entries.slice(0, MAX_AUDIT_ITEMS).map(([k, v]) => [boundedString(k), bounded(v, depth + 1)]);
  return Object.fromEntries(entries.length > MAX_AUDIT_ITEMS ? [...kept, ['…', `+${entries.length - MAX_AUDIT_ITEMS} more`]] : kept);
}

/** The one line that stands for every refusal from an address past limits.unauthenticated in this window. */
function limitedNote(limited: RefusalsLimited): string {
  return (
    `more than ${limited.max} refused requests from this address within ${limited.timeWindowMs} ms: answering 429, ` +
    `and its further refusals are not audited until ${limited.until.toISOString()}`
  );
}

export function createAuditLog(config: Config['audit']): Logger | null {
  if (config.destination === 'off') return null;
  const dest =
    config.destination === 'stderr'
      ? pino.destination(2)
      : config.destination === 'stdout'
        ? pino.destination(1)
        : pino.destination({ dest: config.destination, mkdir: true, sync: false });
  return pino({ base: { service: 'qga-gateway', log: 'audit' }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
}

/** What the request acted on, from the few fields that name a target; never a whole body. */
function targetOf(request: FastifyRequest): Record<string, unknown> {
  const params = (request.params ?? {}) as Record<string, unknown>;
  const body = (request.body && typeof request.body === 'object' ? request.body : {}) as Record<string, unknown>;
  const target: Record<string, unknown> = {};
  if (typeof params['*'] === 'string') target.path = `/${params['*']}`;
  if (typeof params.user === 'string') target.user = params.user;
  if (typeof params.pid === 'string') target.pid = params.pid;
  if (typeof body.path === 'string') target.program = body.path;
  if (typeof body.action === 'string') target.action = body.action;
  if (typeof body.execute === 'string') {
    target.command = body.execute;
    // A raw command reaching a resource's effect is audited with the same target the resource route records.
    const args = (body.arguments && typeof body.arguments === 'object' ? body.arguments : {}) as Record<string, unknown>;
    if (body.execute === 'guest-exec' && typeof args.path === 'string') target.program = args.path;
    if (body.execute === 'guest-file-open' && typeof args.path === 'string') target.path = args.path;
    if (typeof args.mode === 'string') target.mode = args.mode;
    if (typeof args.handle === 'number') target.handle = args.handle;
    if (typeof args.username === 'string') target.user = args.username;
  }
  if (Array.isArray(body.mountpoints)) target.mountpoints = body.mountpoints.filter((m) => typeof m === 'string');
  return target;
}

export function registerAudit(app: FastifyInstance, audit: Logger | null, requestDone: RequestDone): void {
  if (!audit) return;
  requestDone.add((request, reply) => {
    const limited = request.refusalsLimited;
    if (limited && !limited.first) return;
    const refused = reply.statusCode === 401 || reply.statusCode === 403;
    if (READ_ONLY_METHODS.has(request.method) && !refused && !limited) return;
    if (!request.routeOptions.config?.permission) return; // unknown routes change nothing
    const record = limited
      ? { event: 'refusals_limited', outcome: 'limited', status: reply.statusCode, note: limitedNote(limited) }
      : {
          event: refused ? 'denied' : 'change',
          outcome: reply.statusCode < 400 ? 'ok' : refused ? 'denied' : 'failed',
          status: reply.statusCode,
        };
    const line = {
      requestId: request.id,
      identity: request.identity?.name ?? null,
      ...keystoneOf(request),
      remote: request.ip,
      method: request.method,
      route: request.routeOptions.url,
      permission: request.routeOptions.config.permission,
      domain: request.domainName ?? (request.params as { domain?: string } | undefined)?.domain,
      ...targetOf(request),
      ...(request.guestEffect ? { effect: request.guestEffect } : {}),
      ...record,
    };
    audit.info(bounded(line) as Record<string, unknown>, 'audit');
  });
  app.addHook('onClose', async () => {
    audit.flush();
  });
}

/** A Keystone identity's user, project and roles (never its token): who acted, as OpenStack names them. */
function keystoneOf(request: FastifyRequest): { keystone?: Record<string, unknown> } {
  const k = request.identity?.keystone;
  if (!k) return {};
  return {
    keystone: {
      user: { id: k.userId, name: k.userName, domain: k.userDomain },
      scope: k.scope,
      ...(k.projectId ? { project: { id: k.projectId, name: k.projectName } } : {}),
      ...(k.domainId ? { domain: k.domainId } : {}),
      roles: k.roles,
    },
  };
}
