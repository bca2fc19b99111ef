// Authentication and authorisation of every request, decided in onRequest: before any body is read and long
// before any agent command is queued. Routes declare the permission they need; the identity must hold it
// as a scope, and may touch only the domains its patterns match (authoriseDomain, called by the domain routes'
// own onRequest hook, right after this one).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import type { DomainDirectory } from '../domains/directory.js';
import { isDomainId } from '../config/domain-id.js';
import { GatewayError } from '../errors.js';
import { authorizationHeader } from './authorization-header.js';
import type { DomainRef, SignalSource } from '../domains/vocabulary.js';
import { clientCertificate, type ClientCertificate } from './client-certificate.js';
import { DEVELOPMENT_IDENTITY, makeIdentity, mayTouch, mayTouchProject, type Identity } from './identity.js';
import { KeystoneIdentities } from './keystone/identities.js';
import type { Logger } from 'pino';
import { matchToken } from './tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the request acts as; null on public routes without a token. */
    identity: Identity | null;
  }
}

const BEARER = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]{1,512})[ \t]*$/i;

export class Authenticator {
  /** X-Auth-Token identities (auth.keystone); null when it is not configured. */
  readonly keystone: KeystoneIdentities | null;
  private readonly identities: Identity[];
  private readonly hashes: Buffer[];
  /** Client certificate SHA-256 (hex) to the identity it proves (mTLS). */
  private readonly byFingerprint: Map<string, Identity>;

  constructor(
    private readonly config: Config['auth'],
    log?: Logger,
    keystone?: KeystoneIdentities,
  ) {
    this.keystone = keystone ?? (config.keystone && log ? new KeystoneIdentities(config.keystone, log) : null);
    this.identities = config.identities.map((i) => makeIdentity(i.name, i.scopes, i.domains, i.policies));
    this.hashes = config.identities.map((i) => Buffer.from(i.tokenSha256, 'hex'));
    this.byFingerprint = new Map(
      config.identities.flatMap((i, n) => i.clientCertFingerprints.map((f) => [f, this.identities[n]!] as const)),
    );
  }

  get development(): boolean {
    return this.config.mode === 'none';
  }

  /**
   * The identity a request proves: a Keystone token (X-Auth-Token, when auth.keystone is set), or else what identify()
   * decides from its Authorization header and client certificate. One kind of credential per request: a Keystone
   * token beside a bearer token or an identity's certificate is refused, as two different identities would be.
   */
  identifyRequest(
    authorization: string | undefined,
    xAuthToken: string | string[] | undefined,
    cert: ClientCertificate,
  ): Identity | Promise<Identity> {
    if (this.development || xAuthToken === undefined) return this.identify(authorization, cert);
    if (!this.keystone)
      throw new GatewayError(
        'unauthenticated',
        'X-Auth-Token is not accepted here (auth.keystone is not configured): send Authorization: Bearer <token>',
        {
          tokenSent: true,
        },
      );
    if (Array.isArray(xAuthToken)) throw new GatewayError('unauthenticated', 'send one X-Auth-Token header', { tokenSent: true });
    if (authorization !== undefined)
      throw new GatewayError('unauthenticated', 'send either an X-Auth-Token or an Authorization header, not both', { tokenSent: true });
    if (cert?.verified && this.byFingerprint.has(cert.fingerprint))
      throw new GatewayError('unauthenticated', 'the X-Auth-Token and the client certificate prove different identities', {
        tokenSent: true,
      });
    if (cert && !cert.verified)
      throw new GatewayError('unauthenticated', 'the client certificate does not verify against listen.tls.caFile');
    return this.keystone.identify(xAuthToken);
  }

  /**
   * The identity an Authorization header or a verified client certificate proves; throws 401 when there is
   * none, either proves nothing, or they name different identities. A verified certificate no identity names
   * proves nothing, and leaves the decision to the token.
   */
  identify(header: string | undefined, cert: ClientCertificate = null): Identity {
    if (this.development) return DEVELOPMENT_IDENTITY;
    if (cert && !cert.verified)
      throw new GatewayError('unauthenticated', 'the client certificate does not verify against listen.tls.caFile');
    const byCert = cert?.verified ? this.byFingerprint.get(cert.fingerprint) : undefined;
    if (!header) {
      if (byCert) return byCert;
      throw new GatewayError('unauthenticated', 'send Authorization: Bearer <token>');
    }
    const m = BEARER.exec(header);
    const i = m ? matchToken(m[1]!, this.hashes) : -1;
    if (i < 0) throw new GatewayError('unauthenticated', 'the bearer token is not valid', { tokenSent: true });
    const byToken = this.identities[i]!;
    if (byCert && byCert !== byToken)
      throw new GatewayError('unauthenticated', 'the bearer token and the client certificate prove different identities', {
        tokenSent: true,
      });
    return byToken;
  }
}

/** beforeAuthorise: runs once the identity is known, before its scope and domain are checked (the refusal limit). */
export function registerAuthentication(
  app: FastifyInstance,
  protectPublic: boolean,
  auth: Authenticator,
  beforeAuthorise: (request: FastifyRequest) => void = () => {},
): void {
  app.decorateRequest('identity', null);
  // Callback-style, and synchronous unless a Keystone token must be validated: an async hook costs a promise and a
  // turn of the microtask queue on every request.
  app.addHook('onRequest', (request, _reply, next) => {
    const permission = request.routeOptions.config?.permission;
    if (!permission) return next(); // no such route: the not-found handler answers
    if (permission === 'public' && !protectPublic) return next();
    const proven = auth.identifyRequest(
      authorizationHeader(request),
      request.headers['x-auth-token'],
      clientCertificate(request.raw.socket),
    );
    const decide = (identity: Identity) => {
      request.identity = identity;
      if (permission === 'public') return;
      beforeAuthorise(request);
      if (!identity.scopes.has(permission)) {
        throw new GatewayError('forbidden', `identity '${identity.name}' lacks the scope '${permission}' this route needs`);
      }
    };
    if (!(proven instanceof Promise)) {
      decide(proven);
      return next();
    }
    proven.then((identity) => {
      try {
        decide(identity);
      } catch (err) {
        return next(err as Error);
      }
      next();
    }, refuseWith(next));
    // The domain a /domains/{domain} route names is authorised next, by that route's scope (http/domain-scope.ts).
  });
}

/**
 * A rejected check's reason, handed on as the hook's error: next(undefined) would let the request through, so a
 * rejection without an Error (none today) is an internal error, never a pass.
 */
export function refuseWith(next: (err?: Error) => void): (err: unknown) => void {
  return (err) => next(err instanceof Error ? err : new GatewayError('internal_error', 'a check of the request failed without saying why'));
}

/** Whether which domains the identity may touch depends on the domain (its patterns, or its Keystone project). */
export function patternsDecide(identity: Identity): boolean {
  return identity.domains !== null || identity.novaProject !== undefined;
}

/**
 * Whether the identity may touch the domain `named`: it must match the identity's patterns by name or UUID, so it
 * is looked up first (libvirt only, no agent), and answered. A domain that does not exist, or an id that cannot
 * name one, gets the same 403 as one not allowed: no probing for names. null, without a lookup, for an identity
 * that may touch every domain: there is nothing to decide.
 */
export async function authoriseDomain(
  domains: DomainDirectory,
  identity: Identity,
  named: string,
  signal: SignalSource,
): Promise<DomainRef | null> {
  if (!patternsDecide(identity)) return null;
  const refused = () => new GatewayError('forbidden', `identity '${identity.name}' may not touch domain '${named}'`, { domain: named });
  if (!isDomainId(named)) throw refused();
  let dom: DomainRef;
  try {
    dom = await domains.resolve(named, signal);
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'domain_not_found') throw refused();
    // On several hosts: name only the candidates this identity may touch, and refuse when there are none. (Which
    // project each candidate is in would take a lookup each: an identity with a project is simply refused.)
    if (err instanceof GatewayError && err.code === 'domain_ambiguous' && identity.novaProject !== undefined) throw refused();
    if (err instanceof GatewayError && err.code === 'domain_ambiguous') {
      const allowed = (err.extras.candidates ?? []).filter((c) => {
        const { host, rest } = domains.splitId(c);
        return mayTouch(identity, { host, name: rest, uuid: '' });
      });
      if (!allowed.length) throw refused();
      throw new GatewayError('domain_ambiguous', `'${named}' names a domain on several hosts: ask for one of ${allowed.join(', ')}`, {
        ...err.extras,
        candidates: allowed,
      });
    }
    throw err;
  }
  if (!mayTouch(identity, dom)) throw refused();
  if (identity.novaProject !== undefined) {
    let project: string | null;
    try {
      // Kept per domain until its definition or metadata changes: no libvirt round trip per request once known.
      project = await domains.novaProjectId(dom, signal);
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'domain_not_found') throw refused();
      throw err;
    }
    if (!mayTouchProject(identity, project)) throw refused();
  }
  return dom;
}

/** For answers that list domains: keeps the ones the request's identity may see. */
export function visibleTo<T extends { name: string; uuid: string | null; host?: string | null; nova?: { project: { id: string } } | null }>(
  request: FastifyRequest,
  items: T[],
): T[] {
  const identity = request.identity;
  if (!identity || !patternsDecide(identity)) return items;
  return items.filter(
    (d) =>
      mayTouch(identity, { name: d.name, uuid: d.uuid ?? '', host: d.host ?? null }) &&
      mayTouchProject(identity, d.nova?.project.id ?? null),
  );
}
