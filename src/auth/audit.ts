// The audit trail: one structured line for every state-changing call and every refusal (401/403), to its own
// destination, apart from the request log. It names who, which domain, what action and on what (guest path,
// program, user, command), and the outcome; never a body's content (passwords, file data, tokens).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import pino, { type Logger } from 'pino';
import type { Config } from '../config/schema.js';

const READ_ONLY_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function createAuditLog(config: Config['audit']): Logger | null {
  if (config.destination === 'off') return null;
  const dest =
    config.destination === 'stderr' ? pino.destination(2) : config.destination === 'stdout' ? pino.destination(1) : pino.destination({ dest: config.destination, mkdir: true, sync: false });
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
  if (typeof body.execute === 'string') target.command = body.execute;
  if (Array.isArray(body.mountpoints)) target.mountpoints = body.mountpoints.filter((m) => typeof m === 'string');
  return target;
}

export function registerAudit(app: FastifyInstance, audit: Logger | null): void {
  if (!audit) return;
  app.addHook('onResponse', async (request, reply) => {
    const refused = reply.statusCode === 401 || reply.statusCode === 403;
    if (READ_ONLY_METHODS.has(request.method) && !refused) return;
    if (!request.routeOptions.config?.permission) return; // unknown routes change nothing
    audit.info(
      {
        requestId: request.id,
        identity: request.identity?.name ?? null,
        remote: request.ip,
        method: request.method,
        route: request.routeOptions.url,
        permission: request.routeOptions.config.permission,
        domain: request.domainName ?? (request.params as { domain?: string } | undefined)?.domain,
        ...targetOf(request),
        event: refused ? 'denied' : 'change',
        outcome: reply.statusCode < 400 ? 'ok' : refused ? 'denied' : 'failed',
        status: reply.statusCode,
      },
      'audit',
    );
  });
  app.addHook('onClose', async () => {
    audit.flush();
  });
}
