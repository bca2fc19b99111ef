// The gateway's calls to Keystone's identity API v3: its own service token (POST /v3/auth/tokens, password method,
// project-scoped), and the validation of a caller's token with it (GET /v3/auth/tokens, X-Subject-Token). What
// Keystone answers, from test/fixtures/keystone/: 200 with the token; 404 for a subject token that is expired,
// revoked, of a disabled or deleted user, or not a token at all; 401 when the service token itself is not (or no
// longer) valid; 403 when the service user may not validate others' tokens (policy identity:validate_token).
// Anything that is not a clear yes or no (down, slow, 5xx, an answer that cannot be read) is KeystoneUnavailable:
// the request is refused with 503, never let through.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import type { KeystoneConfig } from '../../config/keystone.js';
import { validatedTokenSchema, type ValidatedToken } from './token.js';

export class KeystoneUnavailable extends Error {}

export type Validation = { valid: true; token: ValidatedToken } | { valid: false; why: string };

interface ServiceToken {
  token: string;
  expiresAt: number;
}

/** A service token is renewed this long before Keystone would expire it. */
const RENEW_BEFORE_MS = 60_000;
const MAX_BODY_BYTES = 1024 * 1024;

export class KeystoneClient {
  private readonly agent: Agent;
  /** The password of auth.keystone.service; null when a fixed service token is configured instead. */
  private readonly password: string | null;
  /** auth.keystone.serviceTokenFile's token, used as it is and never renewed. */
  private readonly fixedToken: string | null;
  private service: ServiceToken | null = null;
  private serviceFetch: Promise<ServiceToken> | null = null;

  constructor(private readonly config: KeystoneConfig) {
    this.password = config.service ? (config.service.password ?? readSecret(config.service.passwordFile!)) : null;
    this.fixedToken = config.serviceTokenFile ? readSecret(config.serviceTokenFile) : null;
    // Keystone under uwsgi closes an idle connection after a few seconds without saying so: idle sockets are not
    // kept longer than 2 s, and a request that meets a closed one is sent once more (send()).
    this.agent = new Agent({
      keepAliveTimeout: 2_000,
      keepAliveMaxTimeout: 2_000,
      connect: config.caFile ? { ca: readFileSync(config.caFile) } : {},
    });
  }

  /** Whether Keystone says the token is valid, with what it says of it. Throws KeystoneUnavailable when it cannot say. */
  async validate(subject: string): Promise<Validation> {
    for (let attempt = 0; ; attempt++) {
      const service = await this.serviceToken();
      const res = await this.send('GET', '/auth/tokens?nocatalog', { 'x-auth-token': service.token, 'x-subject-token': subject });
      if (res.status === 200) {
        const parsed = validatedTokenSchema.safeParse(res.json());
        if (!parsed.success)
          throw new KeystoneUnavailable(`Keystone's validation answer could not be read: ${parsed.error.issues[0]?.message}`);
        return { valid: true, token: parsed.data.token };
      }
      if (res.status === 404) return { valid: false, why: 'Keystone does not know the token (expired, revoked, or not a token)' };
      if (res.status === 401 && this.fixedToken !== null)
        throw new KeystoneUnavailable("Keystone refused auth.keystone.serviceTokenFile's token");
      if (res.status === 401 && attempt === 0) {
        // The service token expired or was revoked: a new one, once.
        this.service = null;
        continue;
      }
      if (res.status === 401) throw new KeystoneUnavailable("Keystone refused the gateway's service token twice");
      if (res.status === 403)
        throw new KeystoneUnavailable(
          "Keystone does not let the gateway's service user validate tokens (it needs the role 'service' or admin)",
        );
      throw new KeystoneUnavailable(`Keystone answered ${res.status} to a token validation`);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private serviceToken(): Promise<ServiceToken> {
    if (this.fixedToken !== null) return Promise.resolve({ token: this.fixedToken, expiresAt: Number.POSITIVE_INFINITY });
    if (this.service && this.service.expiresAt - Date.now() > RENEW_BEFORE_MS) return Promise.resolve(this.service);
    this.serviceFetch ??= this.issueServiceToken().finally(() => {
      this.serviceFetch = null;
    });
    return this.serviceFetch;
  }

  private async issueServiceToken(): Promise<ServiceToken> {
    const service = this.config.service!;
    const body = {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: service.username, domain: { name: service.userDomainName }, password: this.password! } },
        },
        scope: { project: { name: service.projectName, domain: { name: service.projectDomainName } } },
      },
    };
    const res = await this.send('POST', '/auth/tokens?nocatalog', { 'content-type': 'application/json' }, JSON.stringify(body));
    if (res.status === 401)
      throw new KeystoneUnavailable(`Keystone refused the gateway's service user '${service.username}' (auth.keystone.service)`);
    if (res.status !== 201) throw new KeystoneUnavailable(`Keystone answered ${res.status} when the gateway asked for its service token`);
    const token = res.headers['x-subject-token'];
    const parsed = validatedTokenSchema.safeParse(res.json());
    if (typeof token !== 'string' || !token || !parsed.success)
      throw new KeystoneUnavailable("Keystone's service token answer could not be read");
    this.service = { token, expiresAt: Date.parse(parsed.data.token.expires_at) };
    return this.service;
  }

  /** One request to Keystone, under auth.keystone.timeoutMs; sent once more when it met a connection Keystone had closed. */
  private async send(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: string) {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await request(`${this.config.url}${path}`, {
          method,
          headers: { accept: 'application/json', ...headers },
          body,
          dispatcher: this.agent,
          signal: AbortSignal.timeout(this.config.timeoutMs),
        });
        const text = await readCapped(res.body);
        return {
          status: res.statusCode,
          headers: res.headers,
          json: (): unknown => {
            try {
              return JSON.parse(text);
            } catch {
              return undefined;
            }
          },
        };
      } catch (err) {
        if (attempt === 0 && isClosedConnection(err)) continue;
        const why = (err as Error).name === 'TimeoutError' ? `no answer within ${this.config.timeoutMs} ms` : (err as Error).message;
        throw new KeystoneUnavailable(`Keystone is not reachable: ${why}`);
      }
    }
  }
}

async function readCapped(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error(`Keystone's answer is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isClosedConnection(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE';
}

/** A secret from a file (a mounted Kubernetes Secret, say): its one line, without the trailing newline. */
function readSecret(path: string): string {
  return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
}
