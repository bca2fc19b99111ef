// The real Keystone of scripts/keystone.sh (Debian 12's keystone, OpenStack Zed, on 127.0.0.1:5050) for the tests of
// the gateway's Keystone identities: its ids, start and stop (leaving it as it was found), and tokens issued and
// revoked through its API as a user would (POST and DELETE /v3/auth/tokens), never through the gateway.
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../../scripts/keystone.sh', import.meta.url));

/** What `bash scripts/keystone.sh ids` prints. */
export interface KeystoneIds {
  authUrl: string;
  domain: { id: string; name: string };
  projects: Record<'admin' | 'project-a' | 'project-b' | 'service', string>;
  users: Record<'admin' | 'alice' | 'bob' | 'qga-gateway', { id: string; password: string }>;
  roles: Record<'admin' | 'member' | 'reader' | 'service', string>;
}

function script(args: string[], env: Record<string, string> = {}): string {
  // start waits until /v3 answers (1.9–7.1 s measured here), stop until uwsgi has exited (~3 s).
  return execFileSync('bash', [SCRIPT, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function keystoneIds(): KeystoneIds {
  return JSON.parse(script(['ids'])) as KeystoneIds;
}

/** Whether Keystone runs and answers (`status` exits 0), rather than being stopped (3). */
export function keystoneRunning(): boolean {
  try {
    script(['status']);
    return true;
  } catch (err) {
    if ((err as { status?: number }).status === 3) return false;
    throw new Error(`scripts/keystone.sh status: ${(err as Error).message}`);
  }
}

/** Starts it (a no-op when it runs); KEYSTONE_TOKEN_EXPIRATION and the like go in `env`. */
export function startKeystone(env: Record<string, string> = {}): void {
  script(['start'], env);
}

export function stopKeystone(): void {
  script(['stop']);
}

export interface KeystoneAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** One call to Keystone's API: a new connection each time (uwsgi closes idle ones after 4 s). */
export function keystoneCall(
  authUrl: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<KeystoneAnswer> {
  const url = new URL(`${authUrl.replace(/\/$/, '')}${path}`);
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path: url.pathname + url.search,
        agent: false,
        timeout: 30_000,
        headers: { accept: 'application/json', ...(data ? { 'content-type': 'application/json' } : {}), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            // kept as text
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`Keystone did not answer ${method} ${path} within 30 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

export type TokenScope = { project: { id: string } } | { system: { all: true } } | { domain: { id: string } } | undefined;

export interface IssuedToken {
  token: string;
  /** Keystone's token body (user, project or system or domain, roles, expires_at). */
  body: {
    expires_at: string;
    user: { id: string; name: string };
    project?: { id: string; name: string };
    roles?: { id: string; name: string }[];
  };
  expiresAt: Date;
}

/** POST /v3/auth/tokens with the password method, as `openstack token issue` does; no scope: an unscoped token. */
export async function issueToken(ids: KeystoneIds, user: keyof KeystoneIds['users'], scope?: TokenScope): Promise<IssuedToken> {
  const auth: Record<string, unknown> = {
    identity: {
      methods: ['password'],
      password: { user: { name: user, domain: { id: ids.domain.id }, password: ids.users[user].password } },
    },
  };
  if (scope) auth.scope = scope;
  const a = await keystoneCall(ids.authUrl, 'POST', '/auth/tokens?nocatalog', {}, { auth });
  const token = a.headers['x-subject-token'];
  if (a.status !== 201 || typeof token !== 'string')
    throw new Error(`Keystone did not issue a token to ${user}: ${a.status} ${JSON.stringify(a.body).slice(0, 300)}`);
  return { token, body: a.body.token, expiresAt: new Date(a.body.token.expires_at) };
}

/** DELETE /v3/auth/tokens by the token itself (the only caller Zed's policy lets revoke it besides an admin). */
export async function revokeToken(ids: KeystoneIds, token: string): Promise<void> {
  const a = await keystoneCall(ids.authUrl, 'DELETE', '/auth/tokens', { 'x-auth-token': token, 'x-subject-token': token });
  if (a.status !== 204) throw new Error(`Keystone did not revoke the token: ${a.status} ${JSON.stringify(a.body).slice(0, 300)}`);
}

/** What Keystone itself says of a token now (GET /v3/auth/tokens as the token itself: 200 valid, 404 not). */
export async function keystoneValidates(ids: KeystoneIds, token: string): Promise<number> {
  return (await keystoneCall(ids.authUrl, 'GET', '/auth/tokens?nocatalog', { 'x-auth-token': token, 'x-subject-token': token })).status;
}
