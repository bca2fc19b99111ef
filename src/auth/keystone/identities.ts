// Keystone tokens (X-Auth-Token) as identities: validated by Keystone (client.ts), kept for at most
// auth.keystone.cacheTtlMs and never past the token's expiry, and turned into what a bearer token's identity is:
// scopes from the token's roles (auth.keystone.roles), the domains it may touch from its scope:
//   - project-scoped: the domains whose Nova metadata names that project (Identity.novaProject);
//   - system-scoped (system: all): every domain;
//   - unscoped or domain-scoped: auth.keystone.unscopedDomains (none by default).
// A token Keystone does not know is 401; when Keystone cannot say, 503 auth_unavailable (Retry-After), never let in.
import type { Logger } from 'pino';
import type { KeystoneConfig } from '../../config/keystone.js';
import type { Scope } from '../../config/scopes.js';
import { GatewayError } from '../../errors.js';
import { makeIdentity, type Identity } from '../identity.js';
import { tokenSha256 } from '../tokens.js';
import { KeystoneClient, KeystoneUnavailable } from './client.js';
import { keystoneFacts, type ValidatedToken } from './token.js';

/** Fernet tokens are 160-200 characters of base64url; PKI(Z) tokens, gone since Ocata, were several KiB. */
const TOKEN = /^[A-Za-z0-9_\-=+/.]{1,8192}$/;

interface Kept {
  /** null: Keystone said the token is not valid. */
  identity: Identity | null;
  until: number;
}

export class KeystoneIdentities {
  private readonly client: KeystoneClient;
  /**
   * By SHA-256 of the token: the tokens themselves are not kept. Insertion order: the oldest first. Tokens Keystone
   * accepted and tokens it refused are kept apart, each up to cacheMaxEntries: anybody can make refused ones (any
   * Fernet-shaped text), and they must not push a user's validation out (that user would then get 503 while
   * Keystone is down, instead of working until the entry expires).
   */
  private readonly kept = new Map<string, Kept>();
  private readonly refused = new Map<string, Kept>();
  private readonly asking = new Map<string, Promise<Kept>>();

  constructor(
    private readonly config: KeystoneConfig,
    private readonly log: Logger,
    client?: KeystoneClient,
  ) {
    this.client = client ?? new KeystoneClient(config);
  }

  /** The identity an X-Auth-Token proves; throws 401 unauthenticated or 503 auth_unavailable. */
  async identify(token: string): Promise<Identity> {
    if (!TOKEN.test(token)) throw new GatewayError('unauthenticated', 'the X-Auth-Token is not a Keystone token', { tokenSent: true });
    const key = tokenSha256(token);
    const now = Date.now();
    let kept = this.kept.get(key) ?? this.refused.get(key);
    if (!kept || kept.until <= now) {
      if (kept) (kept.identity ? this.kept : this.refused).delete(key);
      let pending = this.asking.get(key);
      if (!pending) {
        pending = this.ask(token, key).finally(() => this.asking.delete(key));
        this.asking.set(key, pending);
      }
      kept = await pending;
    }
    if (!kept.identity) throw new GatewayError('unauthenticated', 'Keystone does not accept the X-Auth-Token', { tokenSent: true });
    return kept.identity;
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private async ask(token: string, key: string): Promise<Kept> {
    let validation: Awaited<ReturnType<KeystoneClient['validate']>>;
    try {
      validation = await this.client.validate(token);
    } catch (err) {
      const why = err instanceof KeystoneUnavailable ? err.message : `Keystone could not be asked: ${(err as Error).message}`;
      this.log.warn({ err: { message: why } }, 'Keystone could not validate a token');
      // Why goes to the log only: the caller may be anybody, and Keystone's address, the service user's name or
      // what Keystone's policy refused are none of its business.
      throw new GatewayError(
        'auth_unavailable',
        'the token cannot be validated now: the identity service (Keystone) did not answer usably',
        {
          retryAfter: this.config.retryAfterSeconds,
        },
      );
    }
    const now = Date.now();
    let kept: Kept;
    if (!validation.valid) kept = { identity: null, until: now + this.config.cacheTtlMs };
    else {
      const expiresAt = Date.parse(validation.token.expires_at);
      kept =
        expiresAt <= now
          ? { identity: null, until: now + this.config.cacheTtlMs }
          : { identity: this.identityOf(validation.token), until: Math.min(now + this.config.cacheTtlMs, expiresAt) };
    }
    if (this.config.cacheTtlMs > 0) this.keep(key, kept);
    return kept;
  }

  private keep(key: string, kept: Kept): void {
    const map = kept.identity ? this.kept : this.refused;
    map.set(key, kept);
    while (map.size > this.config.cacheMaxEntries) map.delete(map.keys().next().value!);
  }

  private identityOf(token: ValidatedToken): Identity {
    const facts = keystoneFacts(token);
    const scopes = new Set<Scope>();
    // Own keys only: a role Keystone calls 'constructor' or '__proto__' is mapped to nothing, like any other unmapped one.
    const mapped = this.config.roles;
    for (const role of facts.roles) if (Object.hasOwn(mapped, role)) for (const scope of mapped[role]!) scopes.add(scope);
    // The user's id makes it one identity: what is keyed by identity name (a process's or a raw file handle's owner,
    // rate and refusal limits) must not be shared by two users whose names read the same (LDAP and federated users'
    // names need not be unique; a user deleted and made again under the same name is another user).
    const name = `keystone:${facts.userName}@${facts.userDomain}#${facts.userId}`;
    // Project and system scope: every domain by pattern (a project is narrowed by novaProject); unscoped and
    // domain-scoped tokens only what the operator granted them ([] matches nothing).
    const scoped = facts.scope === 'project' || facts.scope === 'system';
    const identity = makeIdentity(name, [...scopes], scoped ? ['*'] : this.config.unscopedDomains);
    return { ...identity, keystone: facts, ...(facts.scope === 'project' ? { novaProject: facts.projectId! } : {}) };
  }
}
